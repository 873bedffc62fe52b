// The tutorial's Nginx configuration (shared/reference/seed-stack.md),
// rendered for loopback ports: the baseline of the benchmark, never used by
// the stack.
//
// What it reproduces: the official nginx image's main and http context
// (worker_processes auto, 1024 worker connections, the `main` access log
// format, sendfile, keepalive_timeout 65), then the tutorial's two servers:
// 443 with the certificate and key and nothing else about TLS (Nginx's
// default protocols and ciphers), `location /` serving the static frontend
// with try_files, `location /api/` proxying to the app service with Host,
// X-Real-IP and X-Forwarded-For; 80 redirecting to HTTPS with a 301.
// No upstream keepalive (Nginx then speaks HTTP/1.0 to the app and closes
// every upstream connection), no limits, no caching, no security headers.
//
// Docker's DNS answers the service name `flask-gunicorn-app` with the
// address of every scaled replica, and Nginx round-robins over the
// addresses of a proxy_pass host name: the upstream block below, with the
// replicas' loopback ports, is that implicit upstream written out (plain
// round robin, default max_fails/fail_timeout, no keepalive).

export interface TutorialNginxInput {
    httpsPort: number;
    httpPort: number;
    /** "host:port" of every app replica. */
    upstreams: string[];
    certificate: string;
    certificateKey: string;
    staticRoot: string;
    runtimeDir: string;
    mimeTypes: string;
}

export function renderTutorialNginxConfig(input: TutorialNginxInput): string {
    const dir = input.runtimeDir;
    return `# The tutorial's Nginx setup, rendered by bench/tutorial/nginxConfig.ts for the benchmark baseline.
worker_processes auto;
error_log ${dir}/nginx-error.log notice;
pid ${dir}/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include ${input.mimeTypes};
    default_type application/octet-stream;

    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log ${dir}/nginx-access.log main;

    sendfile on;
    keepalive_timeout 65;

    # Writable paths for a non-root run on loopback (the image has its own).
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;

    # What Docker's DNS gives Nginx for http://flask-gunicorn-app:8000 under --scale.
    upstream flask-gunicorn-app {
${input.upstreams.map((address) => `        server ${address};`).join("\n")}
    }

    server {
        listen 127.0.0.1:${input.httpPort};
        server_name localhost;
        return 301 https://$host$request_uri;
    }

    server {
        listen 127.0.0.1:${input.httpsPort} ssl;
        server_name localhost;

        ssl_certificate ${input.certificate};
        ssl_certificate_key ${input.certificateKey};

        location / {
            root ${input.staticRoot};
            index index.html;
            try_files $uri $uri/ /index.html;
        }

        location /api/ {
            proxy_pass http://flask-gunicorn-app;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
`;
}
