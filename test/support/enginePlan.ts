// The steps a Pulumi engine takes to go from one run of the program to the
// next, derived from the two resource graphs the mocks record (inputs,
// state, deleteBeforeReplace, dependencies), following the engine's rules:
//
// - resources are visited in registration order, which respects every
//   dependency (the SDK registers a resource only once the resources it
//   depends on are done), so this order is one the engine may run them in;
// - a resource whose inputs are unchanged is kept, and so is its state;
// - a changed resource is replaced: the docker provider marks nearly every
//   container, network and volume field ForceNew, and the tls resources'
//   fields all are, and so are a Swarm config's and secret's; an image whose
//   build changed is rebuilt in place, and a Swarm service is updated in
//   place (Swarm rolls its tasks) unless its name changed (ForceNew);
// - a replacement deletes first when the program's deleteBeforeReplace
//   option says so, or, where the program does not set the option, when
//   the provider's diff says so (deleteFirstByProvider); such a replacement
//   deletes the old resource first,
//   and before it every old resource whose inputs take a value from it,
//   transitively (their inputs would become unknown, which a ForceNew field
//   turns into a replacement; a dependsOn alone does not count: the
//   engine's calculateDependentReplacements), then creates the new one; any
//   other replacement creates the new one and deletes the old one at the end
//   of the update;
// - resources gone from the program are deleted at the end, with the old
//   resources of create-then-delete replacements, dependents before what
//   they depend on.
import { plainDeep, RecordedResource } from "../unit/program";

export type Step =
    | { op: "create"; resource: RecordedResource }
    | { op: "update"; resource: RecordedResource; old: RecordedResource }
    | { op: "delete"; old: RecordedResource; why: "replaced" | "removed" };

/** Inputs as the engine compares them: secrets unwrapped, JSON-equal. */
function sameInputs(a: RecordedResource, b: RecordedResource): boolean {
    return JSON.stringify(plainDeep(a.inputs)) === JSON.stringify(plainDeep(b.inputs));
}

const isCustom = (r: RecordedResource) => !r.type.startsWith("mlapi:");
const IMAGE = "docker:index/image:Image";
const SERVICE = "docker:index/service:Service";

/** A service whose name stays is updated in place; the provider's other ForceNew fields (auth, mode's shape) the program never changes. */
function updatedInPlace(old: RecordedResource, resource: RecordedResource): boolean {
    return resource.type === SERVICE && plainDeep(old.inputs).name === plainDeep(resource.inputs).name;
}

/**
 * Whether the provider asks the engine to delete a replaced resource before
 * making its successor (the engine follows unless the program set the
 * deleteBeforeReplace option, either way). pulumi-docker (a Terraform
 * bridge) says so for every Container (its ResourceInfo), and for any other
 * resource given an explicit `name` (SetAutonaming makes `name` an
 * auto-named field, and the bridge's nameRequiresDeleteBeforeReplace then
 * assumes the new one takes the same name, changed or not). Images
 * (pulumi-docker's own) and the tls resources never.
 */
export function deleteFirstByProvider(resource: RecordedResource): boolean {
    if (!resource.type.startsWith("docker:index/") || resource.type === IMAGE) return false;
    return resource.type === "docker:index/container:Container" || plainDeep(resource.inputs).name !== undefined;
}

/** Whether the engine replaces the resource delete-first. */
function deletesFirst(resource: RecordedResource): boolean {
    return resource.options.deleteBeforeReplaceSet ? resource.options.deleteBeforeReplace : deleteFirstByProvider(resource);
}

/** Old resources in an order where each comes after everything that depends on it. */
function dependentsFirst(olds: RecordedResource[], all: RecordedResource[]): RecordedResource[] {
    const position = new Map(all.map((r, i) => [r.name, i]));
    return [...olds].sort((a, b) => position.get(b.name)! - position.get(a.name)!);
}

/**
 * The engine's steps from `before` to `after` (pass an empty list as `before`
 * for a first `pulumi up`, as `after` for `pulumi destroy`).
 */
export function enginePlan(before: RecordedResource[], after: RecordedResource[]): Step[] {
    const olds = new Map(before.filter(isCustom).map((r) => [r.name, r]));
    const steps: Step[] = [];
    const deletedEarly = new Set<string>();
    const atEnd: RecordedResource[] = [];
    const changed = after.filter(isCustom).filter((r) => olds.has(r.name) && r.type !== IMAGE && !sameInputs(olds.get(r.name)!, r));
    const updated = new Set(changed.filter((r) => updatedInPlace(olds.get(r.name)!, r)).map((r) => r.name));
    const replaced = new Set(changed.filter((r) => !updated.has(r.name)).map((r) => r.name));

    for (const resource of after.filter(isCustom)) {
        const old = olds.get(resource.name);
        if (!old) {
            steps.push({ op: "create", resource });
        } else if (resource.type === IMAGE) {
            if (JSON.stringify(old.state) !== JSON.stringify(resource.state)) steps.push({ op: "update", resource, old });
        } else if (updated.has(resource.name)) {
            steps.push({ op: "update", resource, old });
        } else if (deletedEarly.has(resource.name)) {
            // Deleted early, as a dependent of a delete-before-replace: only its creation is left.
            steps.push({ op: "create", resource });
        } else if (replaced.has(resource.name)) {
            if (deletesFirst(resource)) {
                // The old resources whose inputs come from this one, transitively, go first.
                const dependents = new Set<string>();
                for (let grew = true; grew; ) {
                    grew = false;
                    for (const d of before.filter(isCustom)) {
                        const takesFrom = d.options.propertyDependencies.some((p) => p === old.name || dependents.has(p));
                        if (takesFrom && !dependents.has(d.name)) {
                            dependents.add(d.name);
                            grew = true;
                        }
                    }
                }
                for (const d of dependentsFirst(before.filter((r) => isCustom(r) && dependents.has(r.name) && !deletedEarly.has(r.name)), before)) {
                    steps.push({ op: "delete", old: d, why: "replaced" });
                    deletedEarly.add(d.name);
                }
                steps.push({ op: "delete", old, why: "replaced" });
                deletedEarly.add(old.name);
            } else {
                atEnd.push(old);
            }
            steps.push({ op: "create", resource });
        }
    }
    const kept = new Set(after.map((r) => r.name));
    const removed = [...olds.values()].filter((r) => !kept.has(r.name));
    for (const old of dependentsFirst([...atEnd, ...removed], before)) {
        steps.push({ op: "delete", old, why: kept.has(old.name) ? "replaced" : "removed" });
    }
    return steps;
}

/** A step as one short line, e.g. "create app-1", "delete app-1 (replaced)". */
export function describeStep(step: Step): string {
    if (step.op === "delete") return `delete ${step.old.name} (${step.why})`;
    return `${step.op} ${step.resource.name}`;
}

/** Runs the steps in order with a replayer's handlers; returns one line per step, with when it began and its seconds. */
export async function runSteps(
    steps: Step[],
    handlers: { create(resource: RecordedResource): Promise<void>; update(resource: RecordedResource): Promise<void>; remove(old: RecordedResource): Promise<void> },
): Promise<string[]> {
    const lines: string[] = [];
    for (const step of steps) {
        const started = Date.now();
        if (step.op === "delete") await handlers.remove(step.old);
        else if (step.op === "update") await handlers.update(step.resource);
        else await handlers.create(step.resource);
        lines.push(`${new Date(started).toISOString().slice(11, 23)} ${describeStep(step)}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    return lines;
}
