// The HTTPS ML API stack: TLS material, two images, the app tier and the
// reverse proxy, composed from the components in components/.
import * as pulumi from "@pulumi/pulumi";
import { AppTier, replicaSettings } from "./components/appTier";
import { loadSettings } from "./components/config";
import { ServiceImages } from "./components/images";
import { NginxConfig } from "./components/proxyConfig";
import { ReverseProxy } from "./components/reverseProxy";
import { TlsCertificate } from "./components/tls";
import { siteUrl } from "./components/urls";

const config = new pulumi.Config();
// Validates every key before any resource exists; a bad value stops here.
const settings = loadSettings(config, Object.keys(pulumi.runtime.allConfig()));
const namePrefix = `mlapi-${pulumi.getStack()}`;

const certificate = new TlsCertificate("server", {
    settings,
    providedPrivateKeyPem: settings.tlsMode === "provided" ? config.getSecret("tlsPrivateKeyPem") : undefined,
});

const images = new ServiceImages("images", { namePrefix, baseImage: settings.baseImage, buildCaCertPem: settings.buildCaCertPem });

const app = new AppTier("app", {
    namePrefix,
    imageId: images.appImageId,
    subnet: settings.appSubnet,
    ...replicaSettings(settings),
});

const nginxConfig = new NginxConfig("proxy-config", {
    certPem: certificate.certPem,
    privateKeyPem: certificate.privateKeyPem,
    upstreams: app.upstreams,
    serverNames: [...settings.certDnsNames, ...settings.certIpAddresses],
    publicHttpsPort: settings.httpsPort,
    limits: settings,
});

const proxy = new ReverseProxy("proxy", {
    namePrefix,
    imageId: images.proxyImageId,
    appNetworkName: app.network.name,
    uploads: nginxConfig.uploads,
    filesDigest: nginxConfig.filesDigest,
    bindAddress: settings.bindAddress,
    httpsPort: settings.httpsPort,
    httpPort: settings.httpPort,
    memoryMb: settings.proxyMemoryMb,
    upstreamResources: app.containers,
});

export const url = siteUrl(settings.bindAddress, settings.httpsPort);
export const apiUrl = `${url}api/v1/`;
export const certificatePem = certificate.certPem;
export const certificateFingerprintSha256 = certificate.fingerprintSha256;
export const certificateNotAfter = certificate.notAfter;
export const certificateDaysLeft = certificate.daysLeft;
export const caCertificatePem = certificate.caCertPem;
export const certificateSigningRequestPem = certificate.certRequestPem;
export const replicaNames = app.containerNames;
export const proxyContainerName = proxy.container.name;
export const appImage = pulumi.interpolate`${images.appImageName} (${images.appImageId})`;
export const proxyImage = pulumi.interpolate`${images.proxyImageName} (${images.proxyImageId})`;
