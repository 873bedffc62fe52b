# An app image built the tutorial's way: the size and memory baseline of the
# benchmark (bench/run.ts builds it; the stack never uses it).
#
#   one stage: a Python slim base, `pip install` of numpy, pandas,
#   scikit-learn, flask and gunicorn, the app module and its pickled models
#   copied in, and `gunicorn -w 5 -b 0.0.0.0:8000 api:app`.
#
# The tutorial starts FROM python:3.12-slim. Docker Hub is not reachable
# here, so the same kind of base is made from the local debian:trixie-slim
# (scripts/ensure-docker.sh provides it) with Debian's python3 (3.13) and a
# virtualenv: python:*-slim images are themselves a Debian slim image plus a
# Python and pip. Packages are installed without pip's cache, as a careful
# tutorial would. The build context (made by bench/lib/images.ts) holds
# api.py, models/*.joblib and requirements.txt from bench/tutorial/.
#
# BUILD_CA_CERT: optional PEM certificate(s) pip trusts, for networks that
# intercept TLS (as in app/Dockerfile).

ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}
ARG BUILD_CA_CERT=""
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -n "$BUILD_CA_CERT" ]; then \
      printf '%s\n' "$BUILD_CA_CERT" > /usr/local/share/ca-certificates/build-ca.crt \
      && update-ca-certificates; \
    fi \
 && python3 -m venv /usr/local/venv
ENV PATH=/usr/local/venv/bin:$PATH \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
CMD ["gunicorn", "-w", "5", "-b", "0.0.0.0:8000", "api:app"]
