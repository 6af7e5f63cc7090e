"""Render micro-benchmarks: one deployment, and 1,000 deployments.

Run: .venv/bin/python -m benchmarks.bench_render
"""

import statistics
import time

from modelplane.planning.service import offers_for, plan_deployment
from modelplane.render.engine import render_deployment
from modelplane.render.serialize import dump_stream
from tests.support import deployment

REPEATS = 200


def main() -> None:
    offers = offers_for([])
    md = deployment(model={"name": "meta-llama/Llama-3.1-8B-Instruct"}, maxModelLen=8192)
    plan = plan_deployment(md, offers).plan
    assert plan is not None
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        dump_stream(render_deployment(md, plan))
        samples.append(time.perf_counter() - start)
    print(f"render 1 deployment (render + YAML): median {statistics.median(samples) * 1e3:.2f} ms over {REPEATS}")
    many = [deployment(name=f"chat-{index}", namespace=f"team-{index % 20}",
                       model={"name": "meta-llama/Llama-3.1-8B-Instruct"}, maxModelLen=8192)
            for index in range(1000)]  # fmt: skip
    start = time.perf_counter()
    for item in many:
        dump_stream(render_deployment(item, plan))
    print(f"render 1,000 deployments: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
