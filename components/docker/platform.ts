// The stack on one Docker host: the app tier's containers, the Nginx config
// rendered for their addresses, and the reverse proxy in front of them.
import * as pulumi from "@pulumi/pulumi";
import { replicaSettings } from "../appSpec";
import { StackSettings } from "../config";
import { ServiceImages } from "../images";
import { NginxConfig, frontendFiles } from "../proxyConfig";
import { TlsCertificate } from "../tls";
import { siteUrl } from "../urls";
import { AppTier } from "./appTier";
import { ReverseProxy } from "./reverseProxy";

export function deployOnDocker(settings: StackSettings, namePrefix: string, certificate: TlsCertificate, images: ServiceImages) {
    const app = new AppTier("app", {
        namePrefix,
        imageId: images.servedImageId,
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
        keeperImageId: images.appImageId,
        engineSocket: settings.engineSocket,
        holderDependsOn: [images],
        appNetworkName: app.network.name,
        uploads: nginxConfig.uploads,
        filesDigest: nginxConfig.filesDigest,
        frontConfig: nginxConfig.frontText,
        bindAddress: settings.bindAddress,
        httpsPort: settings.httpsPort,
        httpPort: settings.httpPort,
        operatorPort: settings.operatorPort,
        memoryMb: settings.proxyMemoryMb,
        upstreamResources: app.containers,
    });

    return {
        url: siteUrl(settings.bindAddress, settings.httpsPort),
        outputs: {
            replicaNames: app.containerNames,
            proxyContainerName: proxy.container.name,
            portHolderName: proxy.portHolder.name,
            ...(settings.operatorPort ? { operatorUrl: `http://127.0.0.1:${settings.operatorPort}/` } : {}),
            proxyFilesDigest: proxy.loadedDigest,
        } satisfies Record<string, pulumi.Input<unknown>>,
    };
}
