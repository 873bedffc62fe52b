// Containers named by their settings: the same settings give the same name,
// new settings a new one, so Pulumi can start the successor beside the
// container it replaces.
import * as crypto from "crypto";

/** The first 8 hex digits of a sha256 of the container's resolved inputs. */
export function settingsDigest(spec: unknown): string {
    return crypto.createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 8);
}
