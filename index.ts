// The HTTPS ML API stack: TLS material, the model repository and the images, shared by both
// platforms, then either one Docker host's containers (components/docker/)
// or a Docker Swarm cluster's services (components/swarm/).
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { loadSettings } from "./components/config";
import { deployOnDocker } from "./components/docker/platform";
import { ServiceImages } from "./components/images";
import { readModelRepository } from "./components/modelRepository";
import { deployOnSwarm } from "./components/swarm/platform";
import { TlsCertificate } from "./components/tls";

const config = new pulumi.Config();
// Validates every key before any resource exists; a bad value stops here.
const settings = loadSettings(config, Object.keys(pulumi.runtime.allConfig()));
const namePrefix = `mlapi-${pulumi.getStack()}`;
const swarm = settings.platform === "swarm";
const registryPassword = swarm && settings.registryUsername ? config.requireSecret("registryPassword") : undefined;

const certificate = new TlsCertificate("server", {
    settings,
    providedPrivateKeyPem: settings.tlsMode === "provided" ? config.getSecret("tlsPrivateKeyPem") : undefined,
});

// The models are checked before anything exists too: a bad card or ONNX file stops here.
const models = readModelRepository(path.resolve(settings.modelRepository));

const images = new ServiceImages("images", {
    namePrefix,
    // As configured (relative to the project), so the state does not depend on where the project lives.
    modelRepository: settings.modelRepository,
    baseImage: settings.baseImage,
    platform: settings.imagePlatform,
    buildCaCertPem: settings.buildCaCertPem,
    ...(swarm ? { registry: { address: settings.registryAddress!, username: settings.registryUsername, password: registryPassword } } : {}),
});

const platform = swarm ? deployOnSwarm(settings, namePrefix, certificate, images, registryPassword) : deployOnDocker(settings, namePrefix, certificate, images);

// The stack's outputs. The CA certificate and the CSR exist only in their
// TLS modes: an output whose value is undefined makes every `pulumi up` warn.
export = {
    url: platform.url,
    apiUrl: `${platform.url}api/v1/`,
    certificatePem: certificate.certPem,
    certificateFingerprintSha256: certificate.fingerprintSha256,
    certificateNotAfter: certificate.notAfter,
    certificateDaysLeft: certificate.daysLeft,
    certificateRenewalDays: settings.certRenewalDays,
    ...(certificate.caCertPem ? { caCertificatePem: certificate.caCertPem } : {}),
    ...(certificate.certRequestPem ? { certificateSigningRequestPem: certificate.certRequestPem } : {}),
    ...platform.outputs,
    appImage: pulumi.interpolate`${images.appImageName} (${images.appImageId})`,
    servedImage: pulumi.interpolate`${images.servedImageName} (${images.servedImageId})`,
    models: models.map((m) => `${m.name} ${m.version}`),
    proxyImage: pulumi.interpolate`${images.proxyImageName} (${images.proxyImageId})`,
};
