// The model repository (docs/model-repository.md), checked before anything is
// created: the same card, field and ONNX rules a replica applies when it loads
// the repository (app/mlapi/card.py, fields.py, registry.py), so that a bad
// model stops `pulumi preview` instead of a rollout. The ONNX file is read with
// a small protobuf reader (only the graph's inputs, outputs and initializer
// names). Every problem of every model is reported at once.
import { RunError } from "@pulumi/pulumi";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

export const CARD_FILE = "model.json";
const CARD_FORMAT = "mlapi.model/1";
const MODEL_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_ .-]{0,63}$/;
const DATE_SHAPE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const TASKS = ["classification", "regression"] as const;
const LAYOUTS = ["matrix", "columns"] as const;
const INPUT_DTYPES = ["float32", "float64", "int64"] as const;
// The ONNX outputs a card names, by task: required, then optional.
const OUTPUTS: Record<Task, { required: string[]; optional: string[] }> = {
    classification: { required: ["label"], optional: ["probabilities"] },
    regression: { required: ["value"], optional: [] },
};
// Keys an answer carries besides the result key, which must not be one of them.
const ANSWER_KEYS = ["model", "model_version", "probabilities"];
// Besides the model folders, what the top level and a folder may hold.
const TOP_LEVEL_FILES = /^(README.*|\.gitignore|\.dockerignore)$/;
const FOLDER_EXTRAS = ["README.md"];
/** Larger files are refused before they are read. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;

type Task = (typeof TASKS)[number];
type Layout = (typeof LAYOUTS)[number];

export interface ServedModel {
    name: string;
    version: string;
    task: Task;
    description: string;
    file: string;
    sha256: string;
    /** Absolute path of the model's folder. */
    folder: string;
    /** The card's fields, as written. */
    inputs: unknown[];
    classes?: (string | number)[];
    /** Size of the ONNX file. */
    bytes: number;
}

export class ModelRepositoryError extends RunError {
    constructor(
        readonly dir: string,
        readonly problems: string[],
    ) {
        super(`Invalid model repository ${dir}:\n  - ${problems.join("\n  - ")}`);
        this.name = "ModelRepositoryError";
    }
}

/** Every model of the repository `dir`, in folder order, or throws ModelRepositoryError with every problem. */
export function readModelRepository(dir: string): ServedModel[] {
    const root = path.resolve(dir);
    let entries: string[];
    try {
        entries = fs.readdirSync(root).sort();
    } catch (error) {
        throw new ModelRepositoryError(dir, [`the repository ${ioProblem(error)}`]);
    }
    const problems: string[] = [];
    const folders: string[] = [];
    for (const entry of entries) {
        const stat = fs.lstatSync(path.join(root, entry));
        if (stat.isSymbolicLink()) problems.push(`${entry}: is a symbolic link; a repository holds plain folders and files, as the image build copies them`);
        else if (stat.isFile() && TOP_LEVEL_FILES.test(entry)) continue;
        else if (entry.startsWith(".")) problems.push(`${entry}: a hidden entry; the top level holds model folders (and README*, .gitignore, .dockerignore) only`);
        else if (stat.isDirectory()) folders.push(entry);
        else problems.push(`${entry}: not a model folder; the top level holds model folders (and README*, .gitignore, .dockerignore) only`);
    }
    if (!folders.length) problems.push(`no model folder in ${dir}`);
    const models: ServedModel[] = [];
    for (const folder of folders) {
        const model = readModel(path.join(root, folder), folders, problems);
        if (model) models.push(model);
    }
    if (problems.length) throw new ModelRepositoryError(dir, problems);
    return models;
}

/** One model folder: its checked ServedModel, or undefined with its problems added to `problems`. */
function readModel(folder: string, allFolders: string[], problems: string[]): ServedModel | undefined {
    const folderName = path.basename(folder);
    const before = problems.length;
    const report = (file: string, problem: string) => problems.push(`${folderName}/${file}: ${problem}`);

    const cardBytes = readPlainFile(folder, CARD_FILE, (problem) => report(CARD_FILE, problem));
    let card: Card | undefined;
    let namedFile: string | undefined;
    if (cardBytes) {
        let json: unknown;
        try {
            json = JSON.parse(cardBytes.toString("utf8"));
        } catch (error) {
            report(CARD_FILE, `is not valid JSON: ${(error as Error).message}`);
        }
        if (json !== undefined) {
            const checked = checkCard(json, folderName, allFolders);
            checked.problems.forEach((problem) => report(CARD_FILE, problem));
            card = checked.card;
            namedFile = checked.file;
        }
    }

    // Only the card, its ONNX file and a README are copied into the image.
    const allowed = new Set([CARD_FILE, ...FOLDER_EXTRAS, ...(namedFile ? [namedFile] : [])]);
    let entries: string[] = [];
    try {
        entries = fs.readdirSync(folder).sort();
    } catch (error) {
        problems.push(`${folderName}: the folder ${ioProblem(error)}`);
    }
    for (const entry of entries) {
        const stat = fs.lstatSync(path.join(folder, entry));
        if (stat.isSymbolicLink()) {
            if (entry !== CARD_FILE && entry !== namedFile) report(entry, "is a symbolic link; a model is plain files, as the image build copies them");
        } else if (!allowed.has(entry) && (namedFile || !entry.endsWith(".onnx"))) {
            report(entry, `is not part of the model; a model folder holds ${CARD_FILE}, the ONNX file its card names and ${FOLDER_EXTRAS.join(", ")} only`);
        } else if (FOLDER_EXTRAS.includes(entry) && !stat.isFile()) {
            report(entry, "is not a regular file");
        }
    }

    if (!namedFile) return undefined;
    const file = namedFile;
    const content = readPlainFile(folder, file, (problem) => report(file, problem));
    if (!content) return undefined;
    const sha256 = crypto.createHash("sha256").update(content).digest("hex");
    if (card && sha256 !== card.sha256) report(file, `its SHA-256 ${sha256} is not the card's ${card.sha256}`);
    let signature: OnnxSignature | undefined;
    try {
        signature = parseOnnxSignature(content);
    } catch (error) {
        if (!(error instanceof OnnxFormatError)) throw error;
        report(file, `is not a valid ONNX model: ${error.message}`);
    }
    if (card && signature) checkSignature(card, signature).forEach((problem) => report(file, problem));

    if (!card || !cardBytes || problems.length > before) return undefined;
    return {
        name: card.name,
        version: card.version,
        task: card.task,
        description: card.description,
        file,
        sha256,
        folder,
        inputs: card.inputs,
        ...(card.classes ? { classes: card.classes } : {}),
        bytes: content.length,
    };
}

/** The bytes of a regular file of the folder, or undefined after reporting why not. */
function readPlainFile(folder: string, file: string, report: (problem: string) => void): Buffer | undefined {
    const full = path.join(folder, file);
    try {
        // lstat: a symbolic link could point outside the model's folder.
        const stat = fs.lstatSync(full);
        if (stat.isSymbolicLink()) return void report("is a symbolic link; a model is plain files, as the image build copies them");
        if (!stat.isFile()) return void report("is not a regular file");
        if (stat.size > MAX_FILE_BYTES) return void report(`is ${stat.size} bytes, more than the ${MAX_FILE_BYTES / 1024 / 1024} MiB allowed`);
        return fs.readFileSync(full);
    } catch (error) {
        return void report(ioProblem(error));
    }
}

function ioProblem(error: unknown): string {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : (error as Error).message;
    return `cannot be read: ${reason}`;
}

// ---------------------------------------------------------------------------
// The card (card.py) and its fields (fields.py).

type Kind = "number" | "integer" | "string";

/** What a field feeds the model: its ONNX-facing kind, layouts and matrix width. */
interface Field {
    name: string;
    transform: string;
    kind: Kind;
    layouts: readonly Layout[];
    features: number;
}

interface Card {
    name: string;
    version: string;
    task: Task;
    description: string;
    file: string;
    sha256: string;
    layout: Layout;
    inputs: unknown[];
    fields: Field[];
    onnxInput?: string;
    inputDtype?: (typeof INPUT_DTYPES)[number];
    outputs: Record<string, string>;
    classes?: (string | number)[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

/** The JSON type of a decoded value, for messages. */
function jsonType(value: unknown): string {
    if (value === undefined) return "nothing";
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    return typeof value === "object" ? "object" : typeof value;
}

/** A short rendering of a value to quote back in a message. */
function preview(value: unknown, limit = 40): string {
    const text = value === undefined ? "nothing" : JSON.stringify(value);
    return text.length <= limit ? text : text.slice(0, limit - 3) + "...";
}

/**
 * Checks a decoded card of the folder `folderName` (one of `allFolders`).
 * `card` is set when there is no problem; `file` whenever the card names a
 * plain file name, so that the ONNX file can be checked and is not taken
 * for an extra file.
 */
function checkCard(json: unknown, folderName: string, allFolders: string[]): { card?: Card; file?: string; problems: string[] } {
    if (!isObject(json)) return { problems: [`the card must be a JSON object, got ${jsonType(json)}`] };
    const problems: string[] = [];
    const string = (mapping: Json, key: string, label = key): string | undefined => {
        if (!(key in mapping)) return void problems.push(`${label} is missing`);
        const value = mapping[key];
        if (typeof value === "string" && value) return value;
        problems.push(`${label} must be a non-empty string, got ${preview(value)}`);
        return undefined;
    };
    const choice = <T extends string>(mapping: Json, key: string, choices: readonly T[], label = key): T | undefined => {
        if (!(key in mapping)) return void problems.push(`${label} is missing`);
        if ((choices as readonly unknown[]).includes(mapping[key])) return mapping[key] as T;
        problems.push(`${label} must be one of ${choices.join(", ")}, got ${preview(mapping[key])}`);
        return undefined;
    };
    const matching = (value: string | undefined, pattern: RegExp, key: string): string | undefined => {
        if (value === undefined || pattern.test(value)) return value;
        problems.push(`${key} must match ${pattern.source}, got ${preview(value)}`);
        return undefined;
    };

    if (json.format !== CARD_FORMAT) problems.push(`format must be ${JSON.stringify(CARD_FORMAT)}, got ${preview(json.format)}`);
    const name = matching(string(json, "name"), MODEL_NAME, "name");
    if (name !== undefined && name !== folderName) {
        const twice = allFolders.includes(name) ? `; folder ${JSON.stringify(name)} is a model of that name, a name must appear once` : "";
        problems.push(`name ${JSON.stringify(name)} is not the name of its folder ${JSON.stringify(folderName)}${twice}`);
    }
    const version = matching(string(json, "version"), VERSION, "version");
    const task = choice(json, "task", TASKS);
    const description = string(json, "description");
    let file = string(json, "file");
    if (file !== undefined && (file === "." || file === ".." || /[/\\\0]/.test(file))) {
        problems.push(`file must be a plain file name inside the model's folder, got ${preview(file)}`);
        file = undefined;
    }
    const sha256 = string(json, "sha256");
    if (sha256 !== undefined && !SHA256.test(sha256)) problems.push(`sha256 must be 64 lower-case hex digits, got ${preview(sha256)}`);
    if ("result_key" in json) {
        const resultKey = json.result_key;
        if (typeof resultKey !== "string" || !resultKey || ANSWER_KEYS.includes(resultKey)) {
            problems.push(`result_key must be a string other than ${ANSWER_KEYS.join(", ")}, got ${preview(resultKey)}`);
        }
    }
    const layout = choice(json, "input_layout", LAYOUTS);
    const fields = checkFields(json.inputs, layout, problems);

    const onnx = json.onnx;
    let onnxInput: string | undefined;
    let inputDtype: (typeof INPUT_DTYPES)[number] | undefined;
    let outputs: Record<string, string> | undefined;
    if (!isObject(onnx)) {
        problems.push(`onnx must be an object, got ${jsonType(onnx)}`);
    } else {
        if (layout === "matrix") {
            onnxInput = string(onnx, "input", "onnx.input");
            inputDtype = choice(onnx, "input_dtype", INPUT_DTYPES, "onnx.input_dtype");
            for (const field of inputDtype === "int64" ? fields ?? [] : []) {
                if (field.kind === "number") problems.push(`field ${JSON.stringify(field.name)}: a number cannot feed an int64 input`);
            }
        }
        if (task) outputs = checkOutputs(onnx.outputs, task, problems);
    }
    const classes = task === "classification" ? checkClasses(json.classes, problems) : undefined;
    for (const key of ["metrics", "source"]) {
        if (json[key] !== undefined && json[key] !== null && !isObject(json[key])) problems.push(`${key} must be an object, got ${jsonType(json[key])}`);
    }
    if (problems.length) return { file, problems };
    return {
        file,
        problems,
        card: {
            name: name!,
            version: version!,
            task: task!,
            description: description!,
            file: file!,
            sha256: sha256!,
            layout: layout!,
            inputs: json.inputs as unknown[],
            fields: fields!,
            onnxInput,
            inputDtype,
            outputs: outputs!,
            classes,
        },
    };
}

function checkFields(specs: unknown, layout: Layout | undefined, problems: string[]): Field[] | undefined {
    if (!Array.isArray(specs) || !specs.length) return void problems.push(`inputs must be a non-empty list of fields, got ${preview(specs)}`);
    const fields: Field[] = [];
    for (const spec of specs) {
        const field = checkField(spec);
        if (typeof field === "string") problems.push(`inputs: ${field}`);
        else if (layout && !field.layouts.includes(layout)) problems.push(`inputs: field ${JSON.stringify(field.name)}: transform ${field.transform} cannot feed the ${layout} layout`);
        else if (fields.some((other) => other.name === field.name)) problems.push(`inputs: field name ${JSON.stringify(field.name)} appears twice`);
        else fields.push(field);
    }
    return fields.length === specs.length ? fields : undefined;
}

const TRANSFORMS: Record<string, string[]> = {
    number: ["number"],
    integer: ["number"],
    category: ["label", "onehot", "raw"],
    date: ["date-parts"],
};

/** The Field of a card's field spec, or the problem (fields.py's field_from_spec). */
function checkField(spec: unknown): Field | string {
    if (!isObject(spec)) return `a field must be an object, got ${jsonType(spec)}`;
    const name = spec.name;
    if (typeof name !== "string" || !FIELD_NAME.test(name)) return `field name must match ${FIELD_NAME.source}, got ${preview(name)}`;
    const problem = fieldProblem(spec);
    if (typeof problem === "string") return `field ${JSON.stringify(name)}: ${problem}`;
    return { name, ...problem };
}

function fieldProblem(spec: Json): Omit<Field, "name"> | string {
    const type = spec.type;
    const transforms = typeof type === "string" && Object.hasOwn(TRANSFORMS, type) ? TRANSFORMS[type] : undefined;
    if (!transforms) return `type must be one of ${Object.keys(TRANSFORMS).join(", ")}, got ${preview(type)}`;
    const transform = "transform" in spec ? spec.transform : transforms[0];
    if (typeof transform !== "string" || !transforms.includes(transform)) {
        return `transform must be one of ${transforms.join(", ")} for type ${type}, got ${preview(transform)}`;
    }
    if ("description" in spec && typeof spec.description !== "string") return `description must be a string, got ${preview(spec.description)}`;
    const required = (key: string, check: (value: unknown) => boolean, expected: string): string | undefined => {
        if (!(key in spec)) return `${key} is missing`;
        return check(spec[key]) ? undefined : `${key} must be ${expected}, got ${preview(spec[key])}`;
    };
    // Each type: the problem of its keys, or how it parses an example and what it feeds the model.
    let parse: (value: unknown) => string | undefined;
    let field: Omit<Field, "name">;
    if (type === "number" || type === "integer") {
        const isBound = type === "number" ? isNumber : (value: unknown) => isNumber(value) && Number.isInteger(value);
        const bounds = type === "number" ? "a finite number" : "a whole number";
        const bad = required("minimum", isBound, bounds) ?? required("maximum", isBound, bounds);
        if (bad) return bad;
        const [minimum, maximum] = [spec.minimum as number, spec.maximum as number];
        if (minimum > maximum) return `minimum ${minimum} is above maximum ${maximum}`;
        parse = (value) => {
            if (typeof value !== "number") return `must be ${type === "number" ? "a number" : "an integer"}, got ${jsonType(value)}`;
            if (type === "integer" && !Number.isInteger(value)) return `must be an integer, got ${preview(value)}`;
            return minimum <= value && value <= maximum ? undefined : `must be between ${minimum} and ${maximum}, got ${preview(value)}`;
        };
        field = { transform, kind: type, layouts: LAYOUTS, features: 1 };
    } else if (type === "category") {
        let values: string[];
        if (transform === "label") {
            const bad = required("encoding", isEncoding, "an object of category: distinct code (0 or more)");
            if (bad) return bad;
            // In code order, as fields.py lists them.
            const encoding = spec.encoding as Record<string, number>;
            values = Object.keys(encoding).sort((a, b) => encoding[a] - encoding[b]);
            field = { transform, kind: "integer", layouts: LAYOUTS, features: 1 };
        } else {
            const bad = required("categories", isCategoryList, "a list of distinct strings");
            if (bad) return bad;
            values = spec.categories as string[];
            field = transform === "onehot"
                ? { transform, kind: "number", layouts: ["matrix"], features: values.length }
                : { transform, kind: "string", layouts: ["columns"], features: 1 };
        }
        parse = (value) => {
            if (typeof value !== "string") return `must be a string, got ${jsonType(value)}`;
            return values.includes(value) ? undefined : `must be one of: ${values.join(", ")}; got ${preview(value)}`;
        };
    } else {
        const bad = required("minimum", isDate, "a date YYYY-MM-DD") ?? required("maximum", isDate, "a date YYYY-MM-DD");
        if (bad) return bad;
        const [minimum, maximum] = [spec.minimum as string, spec.maximum as string];
        // Same-shape ISO dates compare as strings.
        if (minimum > maximum) return `minimum ${minimum} is after maximum ${maximum}`;
        parse = (value) => {
            if (typeof value !== "string") return `must be a date string (YYYY-MM-DD), got ${jsonType(value)}`;
            if (!DATE_SHAPE.test(value)) return `must be a date written YYYY-MM-DD, got ${preview(value)}`;
            if (!isDate(value)) return `${value} is not a calendar date`;
            return minimum <= value && value <= maximum ? undefined : `must be between ${minimum} and ${maximum}, got ${value}`;
        };
        field = { transform, kind: "integer", layouts: ["matrix"], features: 4 };
    }
    const bad = "example" in spec ? parse(spec.example) : undefined;
    return bad ? `example ${bad}` : field;
}

function isEncoding(value: unknown): boolean {
    if (!isObject(value)) return false;
    const codes = Object.values(value);
    return codes.length > 0 && codes.every((code) => Number.isInteger(code) && (code as number) >= 0) && new Set(codes).size === codes.length;
}

function isCategoryList(value: unknown): boolean {
    return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "string") && new Set(value).size === value.length;
}

/** A real calendar date YYYY-MM-DD (year 1 or later, as Python's date). */
function isDate(value: unknown): boolean {
    if (typeof value !== "string" || !DATE_SHAPE.test(value)) return false;
    const [year, month, day] = value.split("-").map(Number);
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    return year >= 1 && date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function checkOutputs(outputs: unknown, task: Task, problems: string[]): Record<string, string> | undefined {
    if (!isObject(outputs)) return void problems.push(`onnx.outputs must be an object, got ${jsonType(outputs)}`);
    const { required, optional } = OUTPUTS[task];
    const known = [...required, ...optional];
    const before = problems.length;
    for (const key of Object.keys(outputs)) {
        if (!known.includes(key)) problems.push(`onnx.outputs: ${preview(key)} is not an output of a ${task} model (${known.join(", ")})`);
    }
    for (const key of [...required, ...optional.filter((key) => key in outputs)]) {
        if (!(key in outputs)) problems.push(`onnx.outputs.${key} is missing`);
        else if (typeof outputs[key] !== "string" || !outputs[key]) problems.push(`onnx.outputs.${key} must be a non-empty string, got ${preview(outputs[key])}`);
    }
    return problems.length === before ? (outputs as Record<string, string>) : undefined;
}

function checkClasses(classes: unknown, problems: string[]): (string | number)[] | undefined {
    if (!Array.isArray(classes) || !classes.length) return void problems.push(`classes must be a non-empty list of labels, got ${preview(classes)}`);
    if (!classes.every((label) => Number.isInteger(label)) && !classes.every((label) => typeof label === "string")) {
        return void problems.push("classes must be all whole numbers or all strings");
    }
    if (new Set(classes).size !== classes.length) return void problems.push("classes must be distinct");
    return classes;
}

// ---------------------------------------------------------------------------
// The ONNX file against the card (registry.py's _check_session).

const ELEM_TYPES: Record<number, string> = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
};
const FLOAT = 1;
const INT64 = 7;
const STRING = 8;
const DOUBLE = 11;
const DTYPE_ELEM = { float32: FLOAT, float64: DOUBLE, int64: INT64 } as const;
const FLOATS = [FLOAT, DOUBLE];

export type OnnxType =
    | { kind: "tensor"; elemType: number; /** undefined: no shape; a dimension: its size, its name, or undefined */ shape?: (number | string | undefined)[] }
    | { kind: "sequence"; elem?: OnnxType }
    | { kind: "map"; keyType: number; value?: OnnxType }
    | { kind: "other" };

export interface OnnxValue {
    name: string;
    type?: OnnxType;
}

/** The graph's real inputs (initializers left out) and its outputs. */
export interface OnnxSignature {
    inputs: OnnxValue[];
    outputs: OnnxValue[];
}

/** The type as ONNX Runtime writes it, e.g. tensor(float) or seq(map(int64,tensor(float))). */
export function onnxTypeName(type: OnnxType | undefined): string {
    if (!type || type.kind === "other") return "an unsupported type";
    const elem = (code: number) => ELEM_TYPES[code] ?? `element type ${code}`;
    if (type.kind === "tensor") return `tensor(${elem(type.elemType)})`;
    if (type.kind === "sequence") return `seq(${onnxTypeName(type.elem)})`;
    return `map(${elem(type.keyType)},${onnxTypeName(type.value)})`;
}

function checkSignature(card: Card, signature: OnnxSignature): string[] {
    const problems: string[] = [];
    const inputs = new Map(signature.inputs.map((value) => [value.name, value]));
    const inputNames = JSON.stringify([...inputs.keys()].sort());
    const checkTensor = (value: OnnxValue, what: string, allowed: number[], needs: string) => {
        if (value.type?.kind === "tensor" && allowed.includes(value.type.elemType)) return true;
        const zipMap = value.type?.kind === "sequence" ? " (convert without a ZipMap)" : "";
        problems.push(`${what} is ${onnxTypeName(value.type)}, ${needs} ${allowed.map((code) => onnxTypeName({ kind: "tensor", elemType: code })).join(" or ")}${zipMap}`);
        return false;
    };
    // The batch dimension is free; the last one, when the model fixes it, must fit.
    const checkShape = (value: OnnxValue, what: string, width: number, expected: string) => {
        const shape = value.type?.kind === "tensor" ? value.type.shape : undefined;
        if (shape?.length !== 2) problems.push(`${what} has shape ${shape ? JSON.stringify(shape) : "unknown"}, expected [N, ${width}]`);
        else if (typeof shape[1] === "number" && shape[1] !== width) problems.push(`${what} has ${shape[1]} columns, ${expected} is ${width}`);
    };

    if (card.layout === "columns") {
        const fieldNames = card.fields.map((field) => field.name);
        if (inputNames !== JSON.stringify([...fieldNames].sort())) {
            problems.push(`the ONNX inputs ${inputNames} are not the card's fields ${JSON.stringify([...fieldNames].sort())}`);
        }
        for (const field of card.fields) {
            const input = inputs.get(field.name);
            if (!input) continue;
            const allowed = field.kind === "string" ? [STRING] : field.kind === "number" ? FLOATS : [...FLOATS, INT64];
            const what = `ONNX input ${JSON.stringify(field.name)}`;
            if (checkTensor(input, what, allowed, `field ${JSON.stringify(field.name)} needs`)) checkShape(input, what, 1, "1");
        }
    } else {
        const name = card.onnxInput!;
        if (inputNames !== JSON.stringify([name])) problems.push(`the ONNX inputs ${inputNames} are not the card's one input ${JSON.stringify(name)}`);
        const input = inputs.get(name);
        const what = `ONNX input ${JSON.stringify(name)}`;
        if (input && checkTensor(input, what, [DTYPE_ELEM[card.inputDtype!]], `the card's input_dtype ${card.inputDtype} needs`)) {
            const features = card.fields.reduce((sum, field) => sum + field.features, 0);
            checkShape(input, what, features, "the fields' feature count");
        }
    }

    const outputs = new Map(signature.outputs.map((value) => [value.name, value]));
    for (const [key, name] of Object.entries(card.outputs)) {
        const output = outputs.get(name);
        if (!output) {
            problems.push(`onnx.outputs.${key}: the model has no output ${JSON.stringify(name)} (outputs: ${[...outputs.keys()].join(", ")})`);
            continue;
        }
        const allowed = key !== "label" ? FLOATS : typeof card.classes![0] === "string" ? [STRING] : [INT64];
        const what = `ONNX output ${JSON.stringify(name)} (${key})`;
        if (checkTensor(output, what, allowed, "expected") && key === "probabilities") {
            checkShape(output, `ONNX output ${JSON.stringify(name)}`, card.classes!.length, "the number of classes");
        }
    }
    return problems;
}

// ---------------------------------------------------------------------------
// A minimal protobuf reader: just what locates the graph's inputs and outputs.

/** A file that is not a well-formed ONNX ModelProto; the message says why. */
export class OnnxFormatError extends Error {}

type WireValue = bigint | Buffer | undefined; // varint, length-delimited, fixed (skipped)

/** Calls `visit` for each field of a message, in order; throws OnnxFormatError on malformed bytes. */
function scan(message: Buffer, what: string, visit: (field: number, wire: number, value: WireValue) => void): void {
    let offset = 0;
    const varint = (): bigint => {
        let result = 0n;
        for (let shift = 0n; shift < 70n; shift += 7n) {
            if (offset >= message.length) throw new OnnxFormatError(`${what} is truncated (a number runs past its end)`);
            const byte = message[offset++];
            result |= BigInt(byte & 0x7f) << shift;
            if (byte < 0x80) return BigInt.asUintN(64, result);
        }
        throw new OnnxFormatError(`${what} holds a number longer than 10 bytes`);
    };
    const skip = (length: number) => {
        if (length > message.length - offset) throw new OnnxFormatError(`${what} is truncated (a field runs past its end)`);
        offset += length;
    };
    while (offset < message.length) {
        const tag = varint();
        const field = Number(tag >> 3n);
        const wire = Number(tag & 7n);
        if (field === 0) throw new OnnxFormatError(`${what} holds a field numbered 0`);
        if (wire === 0) visit(field, wire, varint());
        else if (wire === 1) visit(field, wire, void skip(8));
        else if (wire === 5) visit(field, wire, void skip(4));
        else if (wire === 2) {
            const length = varint();
            if (length > BigInt(message.length - offset)) throw new OnnxFormatError(`${what} is truncated (field ${field} runs past its end)`);
            const start = offset;
            skip(Number(length));
            visit(field, wire, message.subarray(start, offset));
        } else throw new OnnxFormatError(`${what} holds field ${field} of wire type ${wire}, which ONNX does not use`);
    }
}

/** The fields of a message the reader needs, by number: varints as the last value, messages and strings as every occurrence. */
function fieldsOf(message: Buffer, what: string, wanted: Record<number, "varint" | "bytes">): Map<number, (bigint | Buffer)[]> {
    const found = new Map<number, (bigint | Buffer)[]>();
    scan(message, what, (field, wire, value) => {
        const kind = wanted[field];
        if (!kind) return;
        const expected = kind === "varint" ? 0 : 2;
        if (wire !== expected) throw new OnnxFormatError(`${what} field ${field} has wire type ${wire}, expected ${expected}`);
        found.set(field, [...(found.get(field) ?? []), value as bigint | Buffer]);
    });
    return found;
}

// Protobuf semantics: a singular scalar takes its last value; a singular
// message occurring more than once is the merge of all, which equals parsing
// the concatenation of their bytes.
const lastVarint = (found: Map<number, (bigint | Buffer)[]>, field: number) => found.get(field)?.at(-1) as bigint | undefined;
const lastString = (found: Map<number, (bigint | Buffer)[]>, field: number) => (found.get(field)?.at(-1) as Buffer | undefined)?.toString("utf8") ?? "";
const merged = (found: Map<number, (bigint | Buffer)[]>, field: number) =>
    found.has(field) ? Buffer.concat(found.get(field) as Buffer[]) : undefined;
const int32 = (value: bigint | undefined) => (value === undefined ? 0 : Number(BigInt.asIntN(32, value)));

/** The inputs (initializers left out, as ONNX Runtime does) and outputs of an ONNX ModelProto. */
export function parseOnnxSignature(bytes: Buffer): OnnxSignature {
    const model = fieldsOf(bytes, "the ModelProto", { 7: "bytes" });
    const graphBytes = merged(model, 7);
    if (!graphBytes) throw new OnnxFormatError("it holds no graph (ModelProto field 7)");
    const graph = fieldsOf(graphBytes, "the graph", { 5: "bytes", 11: "bytes", 12: "bytes", 15: "bytes" });
    const initializers = new Set<string>([
        ...(graph.get(5) ?? []).map((tensor) => lastString(fieldsOf(tensor as Buffer, "an initializer", { 8: "bytes" }), 8)),
        // SparseTensorProto: values (1) is a TensorProto holding the name.
        ...(graph.get(15) ?? []).map((sparse) => {
            const values = merged(fieldsOf(sparse as Buffer, "a sparse initializer", { 1: "bytes" }), 1) ?? Buffer.alloc(0);
            return lastString(fieldsOf(values, "a sparse initializer", { 8: "bytes" }), 8);
        }),
    ]);
    const valueInfo = (info: bigint | Buffer, what: string): OnnxValue => {
        const found = fieldsOf(info as Buffer, what, { 1: "bytes", 2: "bytes" });
        const type = merged(found, 2);
        return { name: lastString(found, 1), ...(type ? { type: parseType(type, 0) } : {}) };
    };
    return {
        inputs: (graph.get(11) ?? []).map((info) => valueInfo(info, "a graph input")).filter((input) => !initializers.has(input.name)),
        outputs: (graph.get(12) ?? []).map((info) => valueInfo(info, "a graph output")),
    };
}

function parseType(bytes: Buffer, depth: number): OnnxType {
    // Nesting is bounded so that a hostile file cannot exhaust the stack.
    if (depth > 16) throw new OnnxFormatError("a type is nested more than 16 deep");
    const found = fieldsOf(bytes, "a type", { 1: "bytes", 4: "bytes", 5: "bytes" });
    // TypeProto's value is a oneof: the last one present wins.
    let last: [number, Buffer] | undefined;
    scan(bytes, "a type", (field, _wire, value) => {
        if (found.has(field)) last = [field, value as Buffer];
    });
    if (!last) return { kind: "other" };
    const inner = merged(found, last[0])!;
    if (last[0] === 1) {
        const tensor = fieldsOf(inner, "a tensor type", { 1: "varint", 2: "bytes" });
        const shapeBytes = merged(tensor, 2);
        const shape = shapeBytes
            ? (fieldsOf(shapeBytes, "a tensor shape", { 1: "bytes" }).get(1) ?? []).map((dim) => parseDimension(dim as Buffer))
            : undefined;
        return { kind: "tensor", elemType: int32(lastVarint(tensor, 1)), ...(shape ? { shape } : {}) };
    }
    if (last[0] === 4) {
        const elem = merged(fieldsOf(inner, "a sequence type", { 1: "bytes" }), 1);
        return { kind: "sequence", ...(elem ? { elem: parseType(elem, depth + 1) } : {}) };
    }
    const map = fieldsOf(inner, "a map type", { 1: "varint", 2: "bytes" });
    const value = merged(map, 2);
    return { kind: "map", keyType: int32(lastVarint(map, 1)), ...(value ? { value: parseType(value, depth + 1) } : {}) };
}

/** A dimension: its size (dim_value), its name (dim_param) or undefined; a oneof, so the last present wins. */
function parseDimension(bytes: Buffer): number | string | undefined {
    let dimension: number | string | undefined;
    scan(bytes, "a dimension", (field, wire, value) => {
        if (field === 1 && wire === 0) dimension = Number(BigInt.asIntN(64, value as bigint));
        else if (field === 2 && wire === 2) dimension = (value as Buffer).toString("utf8");
        else if (field === 1 || field === 2) throw new OnnxFormatError(`a dimension field ${field} has wire type ${wire}`);
    });
    return dimension;
}
