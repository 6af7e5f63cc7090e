# The operator image: `docker build -t modelplane/operator:0.1.0 .` (the chart's default image).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY templates ./templates
RUN pip wheel --no-deps --wheel-dir /wheels . && pip wheel --wheel-dir /wheels /wheels/modelplane-*.whl

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin modelplane
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels modelplane && rm -rf /wheels
USER 10001
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "modelplane.operator"]
