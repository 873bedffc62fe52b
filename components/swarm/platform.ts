// The stack on a Docker Swarm cluster: the app service on its overlay
// network, the Nginx config rendered for task discovery, and on the edge
// nodes the proxy service behind the port forwarders. All of it goes to a manager (swarmManagerHost),
// through a provider that also carries the registry login the nodes pull with.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { replicaSettings } from "../appSpec";
import { StackSettings } from "../config";
import { ServiceImages, registryServer } from "../images";
import { NginxConfig, frontendFiles } from "../proxyConfig";
import { TlsCertificate } from "../tls";
import { siteUrl } from "../urls";
import { SwarmAppService } from "./appService";
import { SwarmProxyService } from "./proxyService";

export function deployOnSwarm(settings: StackSettings, namePrefix: string, certificate: TlsCertificate, images: ServiceImages, registryPassword?: pulumi.Output<string>) {
    // An explicit provider reads no docker:* stack config: docker:host is passed on.
    const host = settings.swarmManagerHost ?? new pulumi.Config("docker").get("host");
    const manager = new docker.Provider("swarm-manager", {
        ...(host ? { host } : {}),
        ...(settings.registryUsername
            ? { registryAuth: [{ address: registryServer(settings.registryAddress!), username: settings.registryUsername, password: registryPassword }] }
            : {}),
    });
    const onManager = { provider: manager };

    const app = new SwarmAppService("app", { namePrefix, image: images.servedImageId, subnet: settings.appSubnet, ...replicaSettings(settings) }, onManager);

    const nginxConfig = new NginxConfig("proxy-config", {
        certPem: certificate.certPem,
        privateKeyPem: certificate.privateKeyPem,
        replicas: "discovered",
        appSubnet: settings.appSubnet,
        frontSubnet: settings.frontSubnet,
        serverNames: [...settings.certDnsNames, ...settings.certIpAddresses],
        publicHttpsPort: settings.httpsPort,
        limits: settings,
        frontend: frontendFiles(),
    });

    const proxy = new SwarmProxyService(
        "proxy",
        {
            namePrefix,
            image: images.proxyImageId,
            appServiceName: app.serviceName,
            appNetworkId: app.network.id,
            frontSubnet: settings.frontSubnet,
            files: nginxConfig.uploads,
            httpsPort: settings.httpsPort,
            httpPort: settings.httpPort,
            replicas: settings.proxyReplicas,
            constraint: settings.proxyConstraint,
            memoryMb: settings.proxyMemoryMb,
            forwarderWorkers: settings.proxyWorkers,
            imagePlatform: settings.imagePlatform,
        },
        onManager,
    );

    return {
        url: siteUrl(settings.edgeAddress, settings.httpsPort),
        outputs: {
            appServiceName: app.serviceName,
            appReplicas: settings.replicas,
            proxyServiceName: proxy.service.name,
            forwarderServiceName: proxy.forwarder.name,
            proxyConfigNames: pulumi.all(proxy.configs.map((c) => c.name)),
        } satisfies Record<string, pulumi.Input<unknown>>,
    };
}
