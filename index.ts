// The HTTPS ML API stack: TLS material, two images, the app tier and the
// reverse proxy, composed from the components in components/.
import * as pulumi from "@pulumi/pulumi";
import { AppTier, replicaSettings } from "./components/appTier";
import { loadSettings } from "./components/config";
import { ServiceImages } from "./components/images";
import { NginxConfig, frontendFiles } from "./components/proxyConfig";
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

const images = new ServiceImages("images", {
    namePrefix,
    baseImage: settings.baseImage,
    platform: settings.imagePlatform,
    buildCaCertPem: settings.buildCaCertPem,
});

const app = new AppTier("app", {
    namePrefix,
    imageId: images.appImageId,
    subnet: settings.appSubnet,
    ...replicaSettings(settings),
});

const nginxConfig = new NginxConfig("proxy-config", {
    certPem: certificate.certPem,
    privateKeyPem: certificate.privateKeyPem,
    replicas: app.endpoints,
    appSubnet: settings.appSubnet,
    serverNames: [...settings.certDnsNames, ...settings.certIpAddresses],
    publicHttpsPort: settings.httpsPort,
    limits: settings,
    frontend: frontendFiles(),
});

const proxy = new ReverseProxy("proxy", {
    namePrefix,
    imageId: images.proxyImageId,
    holderImage: settings.baseImage,
    holderDependsOn: [images],
    appNetworkName: app.network.name,
    uploads: nginxConfig.uploads,
    filesDigest: nginxConfig.filesDigest,
    bindAddress: settings.bindAddress,
    httpsPort: settings.httpsPort,
    httpPort: settings.httpPort,
    operatorPort: settings.operatorPort,
    memoryMb: settings.proxyMemoryMb,
    upstreamResources: app.containers,
});

// The stack's outputs. The CA certificate and the CSR exist only in their
// TLS modes: an output whose value is undefined makes every `pulumi up` warn.
const url = siteUrl(settings.bindAddress, settings.httpsPort);
export = {
    url,
    apiUrl: `${url}api/v1/`,
    certificatePem: certificate.certPem,
    certificateFingerprintSha256: certificate.fingerprintSha256,
    certificateNotAfter: certificate.notAfter,
    certificateDaysLeft: certificate.daysLeft,
    certificateRenewalDays: settings.certRenewalDays,
    ...(certificate.caCertPem ? { caCertificatePem: certificate.caCertPem } : {}),
    ...(certificate.certRequestPem ? { certificateSigningRequestPem: certificate.certRequestPem } : {}),
    replicaNames: app.containerNames,
    proxyContainerName: proxy.container.name,
    portHolderName: proxy.portHolder.name,
    ...(settings.operatorPort ? { operatorUrl: `http://127.0.0.1:${settings.operatorPort}/` } : {}),
    proxyFilesDigest: proxy.loadedDigest,
    appImage: pulumi.interpolate`${images.appImageName} (${images.appImageId})`,
    proxyImage: pulumi.interpolate`${images.proxyImageName} (${images.proxyImageId})`,
};
