// The images the stack runs, built by Pulumi: the Flask + Gunicorn app
// (app/), the served image (the app plus the model repository, built with
// app/models.Dockerfile from the repository folder) and Nginx (nginx/).
// Models are data on top of the code: a new model rebuilds one layer and
// rolls the replicas, and the app image's build (pip, minutes) stays cached.
// On one Docker host they stay local and containers run them by image ID; for
// a swarm they are pushed to the registry every node pulls from, and the
// services run them by digest. Either way repoDigest names the build, so a
// code change rolls the replicas and no change rebuilds nothing.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface ServiceImagesArgs {
    /** Prefix of the local image names, e.g. "mlapi-dev". */
    namePrefix: string;
    /** Base image of both Dockerfiles. */
    baseImage: string;
    /** Platform of the Docker engine the images are for, e.g. linux/amd64. */
    platform: string;
    /** Extra CA certificate(s) pip trusts while the app builds (TLS-intercepting networks). */
    buildCaCertPem?: string;
    /** Where to push the images (swarm mode); unset: they stay in the local engine. */
    registry?: ImageRegistry;
    /** The model repository folder (docs/model-repository.md), already checked. */
    modelRepository: string;
}

export interface ImageRegistry {
    /** host[:port][/path], as image references name it. */
    address: string;
    username?: string;
    password?: pulumi.Input<string>;
}

/** The registry's server part (host[:port]): what logins and the provider's registry auth are keyed by. */
export function registryServer(address: string): string {
    return address.split("/")[0];
}

/** The build of one image, in the shape `docker.Image` takes. Pure, for tests. */
export function imageBuild(context: string, baseImage: string, platform: string, buildCaCertPem?: string): docker.types.input.DockerBuild {
    return {
        context,
        // Relative to the working directory, not the context (provider behaviour).
        dockerfile: `${context}/Dockerfile`,
        // Given explicitly: without it the provider warns on every build.
        platform,
        args: { BASE_IMAGE: baseImage, ...(buildCaCertPem ? { BUILD_CA_CERT: buildCaCertPem } : {}) },
    };
}

/** Build contexts, relative to the project directory (where `pulumi up` runs). */
export const APP_CONTEXT = "app";
export const PROXY_CONTEXT = "nginx";
/** The served image's Dockerfile: FROM the app image, COPY the repository. */
export const MODELS_DOCKERFILE = "app/models.Dockerfile";

/**
 * The served image's build: the repository folder is the context, the app
 * image its base, by name (BuildKit reads a bare image ID in FROM as a Docker
 * Hub repository), with the app image's ID as a label, so a new app image
 * changes the build and rebuilds this one on top of it.
 */
export function modelsImageBuild(repository: string, appImage: { name: pulumi.Input<string>; id: pulumi.Input<string> }, platform: string): docker.types.input.DockerBuild {
    return { context: repository, dockerfile: MODELS_DOCKERFILE, platform, args: { APP_IMAGE: appImage.name, APP_IMAGE_ID: appImage.id } };
}

export class ServiceImages extends pulumi.ComponentResource {
    /** Image IDs (sha256:...) to run containers from, or the pushed images' registry/name@sha256:... */
    readonly appImageId: pulumi.Output<string>;
    /** The app with the model repository: what the replicas run. */
    readonly servedImageId: pulumi.Output<string>;
    readonly proxyImageId: pulumi.Output<string>;
    /** Human-readable references (name:tag). */
    readonly appImageName: pulumi.Output<string>;
    readonly servedImageName: pulumi.Output<string>;
    readonly proxyImageName: pulumi.Output<string>;

    constructor(name: string, args: ServiceImagesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:images:ServiceImages", name, {}, opts);
        const registry = args.registry;
        const build = (component: string, spec: docker.types.input.DockerBuild) =>
            new docker.Image(
                `${name}-${component}`,
                {
                    imageName: `${registry ? `${registry.address}/` : ""}${args.namePrefix}-${component}:latest`,
                    build: spec,
                    skipPush: !registry,
                    ...(registry?.username ? { registry: { server: registryServer(registry.address), username: registry.username, password: registry.password } } : {}),
                },
                { parent: this },
            );
        // Only the app's build downloads over HTTPS (pip); Nginx's uses apt.
        const app = build("app", imageBuild(APP_CONTEXT, args.baseImage, args.platform, args.buildCaCertPem));
        const served = build("models", modelsImageBuild(args.modelRepository, { name: app.imageName, id: app.repoDigest }, args.platform));
        const proxy = build("proxy", imageBuild(PROXY_CONTEXT, args.baseImage, args.platform));
        this.appImageId = app.repoDigest;
        this.servedImageId = served.repoDigest;
        this.servedImageName = served.imageName;
        this.proxyImageId = proxy.repoDigest;
        this.appImageName = app.imageName;
        this.proxyImageName = proxy.imageName;
        this.registerOutputs({ appImageId: this.appImageId, servedImageId: this.servedImageId, proxyImageId: this.proxyImageId });
    }
}
