// Where things live inside the containers: shared by the stack, the
// Dockerfiles' tests and the end-to-end harness, so they cannot drift apart.

/** The app image runs Gunicorn as this unprivileged user (created in app/Dockerfile). */
export const APP_USER = "10001:10001";
export const APP_PORT = 8000;
/** Each replica's Prometheus metrics (its Gunicorn master), on the app network only. */
export const APP_METRICS_PORT = 9000;

/** Debian's www-data: the Nginx image runs as it, never as root (see nginx/Dockerfile). */
export const PROXY_UID = 33;
export const PROXY_USER = `${PROXY_UID}:${PROXY_UID}`;
/**
 * The group that may read the proxy's private key. Uploaded files are owned
 * by root: the provider can only give them an owner by asking Docker to copy
 * with the container's UID/GID, which Docker 20.10 looks up as one name in the
 * host's passwd database and refuses for a numeric "33:33". So the key is
 * 0640 root:root and Nginx's user gets group 0 as a supplementary group (as
 * OpenShift runs images), which opens nothing else in a read-only container.
 */
export const PROXY_KEY_GROUP = "0";
/** Mode of the uploaded private key: readable by root and PROXY_KEY_GROUP only. */
export const PROXY_KEY_MODE = "0640";
/** Unprivileged ports inside the proxy container; the host's 443/80 map onto them. */
export const PROXY_HTTPS_PORT = 8443;
export const PROXY_HTTP_PORT = 8080;
/** The operator listener (see OperatorListener), published on the host's loopback only. */
export const PROXY_OPERATOR_PORT = 9180;
/** The Nginx exporter, on loopback of the proxy's network namespace: only the operator listener reaches it. */
export const PROXY_EXPORTER_ADDRESS = "127.0.0.1:9113";

/**
 * The rendered config, certificate, key and frontend reach Nginx at deploy
 * time through a volume mounted here (read-only for Nginx). Docker refuses
 * uploads into a container whose root filesystem is read-only, and the
 * provider always uploads at "/", so each change uploads the files into a
 * one-shot install container of the proxy image, at these very paths in its
 * own layer; it checks them with `nginx -t` and installs them into the volume
 * (nginx/bin/mlapi-install-files), and a one-shot reload container makes the
 * running Nginx load them (nginx/bin/mlapi-reload).
 */
export const PROXY_DEPLOY_DIR = "/etc/nginx/deploy";
/** Where the install container mounts the deploy volume (read-write). */
export const PROXY_INSTALL_DIR = "/srv/deploy";
export const PROXY_FILES = {
    config: `${PROXY_DEPLOY_DIR}/nginx.conf`,
    /** The front's config (see PROXY_SLOTS_DIR). */
    front: `${PROXY_DEPLOY_DIR}/front.conf`,
    certificate: `${PROXY_DEPLOY_DIR}/server.crt`,
    certificateKey: `${PROXY_DEPLOY_DIR}/server.key`,
};
/** The static frontend, installed with the other files (never baked into the image). */
export const PROXY_STATIC_ROOT = `${PROXY_DEPLOY_DIR}/html`;
/** The frontend's sources, relative to the project directory. */
export const FRONTEND_DIR = "nginx/html";
/** The only writable place in the proxy container (a tmpfs). */
export const PROXY_RUNTIME_DIR = "/tmp";

/**
 * The proxy container runs two kinds of Nginx under a supervisor
 * (nginx/bin/mlapi-proxy): the front, which holds the ports and never
 * reloads, and the site behind it, one Nginx per "slot". A change starts
 * the site anew in a new slot and points the front at it; the old slot
 * finishes its connections and quits. Each slot is a directory under
 * PROXY_SLOTS_DIR, the slot's Nginx prefix and working directory: its pid
 * file, temp files, cache and listening sockets are there (the site config
 * names them relative to it). The front connects to the sockets through
 * PROXY_ACTIVE_SLOT, a link to the slot that takes new connections.
 */
export const PROXY_SLOTS_DIR = `${PROXY_RUNTIME_DIR}/mlapi`;
export const PROXY_ACTIVE_SLOT = `${PROXY_SLOTS_DIR}/active`;
/** The front's own runtime directory (its pid file). */
export const PROXY_FRONT_DIR = `${PROXY_SLOTS_DIR}/front`;
/** A slot's sockets, relative to its directory. */
export const PROXY_SLOT_SOCKETS = { https: "https.sock", http: "http.sock", operator: "operator.sock" };
/**
 * A kept-alive connection to a slot is closed after the first response it
 * gets once it is this old ("Connection: close", or GOAWAY on HTTP/2), and
 * a replaced slot quits PROXY_SLOT_KEEPALIVE_SECONDS + 2 s after the swap:
 * by then each connection it kept that a client still uses has been closed
 * after a response, never under a request in flight, so even clients that
 * never resend a request (Python's http.client) lose nothing to a change.
 */
export const PROXY_SLOT_KEEPALIVE_SECONDS = 4;
export const PROXY_SLOT_DRAIN_SECONDS = PROXY_SLOT_KEEPALIVE_SECONDS + 2;
