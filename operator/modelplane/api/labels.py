"""Label keys and values as the API server checks them (apimachinery's IsQualifiedName, IsValidLabelValue).

Used wherever the API server would refuse them later: a pool's nodeSelector and tolerations (copied onto
serving pods) and the objects' own metadata.
"""

import re

LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{LABEL_NAME}$"
LABEL_VALUE = rf"^({LABEL_NAME})?$"
MAX_KEY_PREFIX = 253
LABEL_KEY_HELP = (
    "a label key: an optional DNS subdomain prefix of at most 253 characters and '/', then a name of at most 63"
    " letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. nvidia.com/gpu.product"
)
LABEL_VALUE_HELP = (
    "a label value: empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)


def cel_label_key(key: str) -> str:
    """The CEL expression true when `key` (a CEL string) is a label key, as is_label_key."""
    return f"{key}.matches('{LABEL_KEY}') && (!{key}.contains('/') || {key}.indexOf('/') <= {MAX_KEY_PREFIX})"


def is_label_key(key: str) -> bool:
    return re.fullmatch(LABEL_KEY, key) is not None and ("/" not in key or key.index("/") <= MAX_KEY_PREFIX)


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and re.fullmatch(LABEL_VALUE, value) is not None
