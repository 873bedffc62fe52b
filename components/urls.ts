import * as net from "net";

/**
 * The URL users open: https://127.0.0.1/ (the port only when it is not 443).
 * A wildcard bind address is not something to browse to, so it maps to loopback.
 */
export function siteUrl(bindAddress: string, httpsPort: number): string {
    const wildcard = bindAddress === "0.0.0.0" || bindAddress === "::";
    const host = wildcard ? "127.0.0.1" : net.isIPv6(bindAddress) ? `[${bindAddress}]` : bindAddress;
    return `https://${host}${httpsPort === 443 ? "" : `:${httpsPort}`}/`;
}
