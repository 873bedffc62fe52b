# The served image: the app image (app/Dockerfile) plus a model repository
# (docs/model-repository.md), built with the repository folder as context:
#
#   docker build -f app/models.Dockerfile --build-arg APP_IMAGE=mlapi-app:dev -t mlapi-models:dev models/
#
# APP_IMAGE names the app image (by name: BuildKit takes a bare image ID for
# a Docker Hub repository); APP_IMAGE_ID, its ID, is recorded as a label, so
# the stack's build changes, and runs again, whenever the app image does.
#
# COPY writes the files as root (no --chmod: Docker 20.10's classic builder
# has none), so the app user (10001) reads them and cannot change them. The
# replica checks every card and SHA-256 again when it loads the repository.
ARG APP_IMAGE
FROM ${APP_IMAGE}
ARG APP_IMAGE_ID=""
LABEL mlapi.app-image="${APP_IMAGE_ID}"
COPY . /opt/mlapi/models/
