// The model repository is checked before anything is created: the built-in
// models and a generated example repository pass; every broken rule is
// refused with a message naming the model, the file and the problem, and all
// problems come at once.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RunError } from "@pulumi/pulumi";
import {
    MAX_FILE_BYTES,
    ModelRepositoryError,
    parseOnnxSignature,
    readModelRepository,
} from "../../components/modelRepository";

const PROJECT = path.resolve(__dirname, "../..");
const BUILT_IN = path.join(PROJECT, "models");
const PYTHON = path.join(PROJECT, ".venv/bin/python");
const CLASSIFIER = "decision-tree-classifier";
const REGRESSOR = "decision-tree-regressor";

let scratch: string;
let examples: string;

beforeAll(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "model-repository-"));
    examples = path.join(scratch, "examples");
    const command = `${PYTHON} -m training.examples --out ${examples}`;
    const run = spawnSync(PYTHON, ["-m", "training.examples", "--out", examples], { cwd: path.join(PROJECT, "app"), encoding: "utf8" });
    if (run.error || run.status !== 0) {
        throw new Error(`cannot build the example repository with \`${command}\` (in app/): ${run.error?.message ?? run.stderr}`);
    }
}, 300_000);

afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

let copies = 0;
/** A fresh copy of a repository (the built-in one by default). */
function copyOf(source = BUILT_IN): string {
    const dir = path.join(scratch, `copy-${++copies}`);
    fs.cpSync(source, dir, { recursive: true });
    return dir;
}

const cardPath = (dir: string, model: string) => path.join(dir, model, "model.json");
const readCard = (dir: string, model: string) => JSON.parse(fs.readFileSync(cardPath(dir, model), "utf8"));

function editCard(dir: string, model: string, edit: (card: any) => void): void {
    const card = readCard(dir, model);
    edit(card);
    fs.writeFileSync(cardPath(dir, model), JSON.stringify(card, null, 2));
}

/** Replaces a model's ONNX file, with the card's SHA-256 to match, so that only the content is wrong. */
function replaceOnnx(dir: string, model: string, bytes: Buffer): void {
    fs.writeFileSync(path.join(dir, model, "model.onnx"), bytes);
    editCard(dir, model, (card) => (card.sha256 = crypto.createHash("sha256").update(bytes).digest("hex")));
}

function problemsOf(dir: string): string[] {
    try {
        readModelRepository(dir);
    } catch (error) {
        expect(error).toBeInstanceOf(ModelRepositoryError);
        expect(error).toBeInstanceOf(RunError);
        const { message, problems } = error as ModelRepositoryError;
        expect(message).toBe(`Invalid model repository ${dir}:\n  - ${problems.join("\n  - ")}`);
        return problems;
    }
    throw new Error(`expected ${dir} to be refused`);
}

/** The repository is refused with exactly the one problem, in <model>/<file>: <problem> form. */
function expectOnly(dir: string, problem: RegExp): void {
    const problems = problemsOf(dir);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
}

describe("valid repositories", () => {
    test("the built-in models are read, as their cards say", () => {
        const models = readModelRepository(BUILT_IN);
        expect(models.map((model) => model.name)).toEqual([CLASSIFIER, REGRESSOR]);
        for (const model of models) {
            const card = readCard(BUILT_IN, model.name);
            const onnx = fs.readFileSync(path.join(BUILT_IN, model.name, card.file));
            expect(model).toMatchObject({
                name: card.name,
                version: card.version,
                task: card.task,
                description: card.description,
                file: card.file,
                sha256: card.sha256,
                folder: path.join(BUILT_IN, model.name),
                inputs: card.inputs,
                bytes: onnx.length,
            });
            expect(model.classes).toEqual(card.task === "classification" ? card.classes : undefined);
        }
    });

    test("the generated example repository (columns layout, forest, XGBoost, LightGBM, the tutorial's trees) is read", () => {
        const models = readModelRepository(examples);
        expect(models.map((model) => model.name)).toEqual(fs.readdirSync(examples).sort());
        expect(models).toHaveLength(6);
        for (const model of models) {
            const card = readCard(examples, model.name);
            expect(model).toMatchObject({ name: card.name, version: card.version, task: card.task, file: card.file, sha256: card.sha256, inputs: card.inputs });
            expect(model.classes).toEqual(card.classes);
            expect(path.isAbsolute(model.folder)).toBe(true);
        }
        expect(readCard(examples, "churn-pipeline").input_layout).toBe("columns");
    });

    test("README files, .gitignore and .dockerignore may sit beside the models", () => {
        const dir = copyOf();
        fs.writeFileSync(path.join(dir, "README.md"), "# models\n");
        fs.writeFileSync(path.join(dir, ".gitignore"), "*.tmp\n");
        fs.writeFileSync(path.join(dir, ".dockerignore"), "README.md\n");
        fs.writeFileSync(path.join(dir, CLASSIFIER, "README.md"), "# the classifier\n");
        expect(readModelRepository(dir)).toHaveLength(2);
    });
});

// One broken rule per case: [what, model, card edit, the problem of <model>/<file>].
const CARD = `${CLASSIFIER}/model.json: `;
const ONNX = `${CLASSIFIER}/model.onnx: `;
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const numberField = { name: "tenure", type: "integer", minimum: 0, maximum: 10 };
const cardCases: [string, (card: any) => void, string][] = [
    ["a key missing", (card) => delete card.task, "task is missing"],
    ["a key of the wrong kind", (card) => (card.version = 1), "version must be a non-empty string, got 1"],
    ["the format", (card) => (card.format = "mlapi.model/2"), 'format must be "mlapi.model/1", got "mlapi.model/2"'],
    ["a name that is not the folder's", (card) => (card.name = "churn"), `name "churn" is not the name of its folder "${CLASSIFIER}"`],
    ["a name that appears twice", (card) => (card.name = REGRESSOR), `name "${REGRESSOR}" is not the name of its folder "${CLASSIFIER}"; folder "${REGRESSOR}" is a model of that name, a name must appear once`],
    ["an unsafe name", (card) => (card.name = "../x"), 'name must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, got "../x"'],
    ["an upper-case name", (card) => (card.name = "Model"), 'name must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, got "Model"'],
    ["a version", (card) => (card.version = "1 0"), 'version must match ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$, got "1 0"'],
    ["the task", (card) => (card.task = "clustering"), 'task must be one of classification, regression, got "clustering"'],
    ["an empty description", (card) => (card.description = ""), 'description must be a non-empty string, got ""'],
    ["a file outside the folder", (card) => (card.file = "../model.onnx"), 'file must be a plain file name inside the model\'s folder, got "../model.onnx"'],
    ["a sha256 that is not hex", (card) => (card.sha256 = "ABC"), 'sha256 must be 64 lower-case hex digits, got "ABC"'],
    ["a result key an answer uses", (card) => (card.result_key = "model_version"), 'result_key must be a string other than model, model_version, probabilities, got "model_version"'],
    ["the layout", (card) => (card.input_layout = "rows"), 'input_layout must be one of matrix, columns, got "rows"'],
    ["no inputs", (card) => (card.inputs = []), "inputs must be a non-empty list of fields, got []"],
    ["a field that is not an object", (card) => (card.inputs[0] = "monthly_fee"), "inputs: a field must be an object, got string"],
    ["a field name", (card) => (card.inputs[0].name = "1st fee"), 'inputs: field name must match ^[A-Za-z_][A-Za-z0-9_ .-]{0,63}$, got "1st fee"'],
    ["a field name twice", (card) => (card.inputs[1].name = "monthly_fee"), 'inputs: field name "monthly_fee" appears twice'],
    ["an unknown type", (card) => (card.inputs[0].type = "text"), 'inputs: field "monthly_fee": type must be one of number, integer, category, date, got "text"'],
    ["an unknown transform", (card) => (card.inputs[0].transform = "log"), 'inputs: field "monthly_fee": transform must be one of number for type number, got "log"'],
    ["a bound missing", (card) => delete card.inputs[0].maximum, 'inputs: field "monthly_fee": maximum is missing'],
    ["a fractional integer bound", (card) => (card.inputs[1].minimum = 18.5), 'inputs: field "customer_age": minimum must be a whole number, got 18.5'],
    ["minimum above maximum", (card) => (card.inputs[0].minimum = 400), 'inputs: field "monthly_fee": minimum 400 is above maximum 300'],
    ["an example out of range", (card) => (card.inputs[0].example = 301), 'inputs: field "monthly_fee": example must be between 0 and 300, got 301'],
    ["a description that is not a string", (card) => (card.inputs[0].description = null), 'inputs: field "monthly_fee": description must be a string, got null'],
    ["a label category without encoding", (card) => card.inputs.push({ name: "plan", type: "category" }), 'inputs: field "plan": encoding is missing'],
    ["codes that are not distinct", (card) => card.inputs.push({ name: "plan", type: "category", encoding: { a: 0, b: 0 } }), 'inputs: field "plan": encoding must be an object of category: distinct code (0 or more), got {"a":0,"b":0}'],
    ["categories that are not distinct", (card) => card.inputs.push({ name: "plan", type: "category", transform: "onehot", categories: ["a", "a"] }), 'inputs: field "plan": categories must be a list of distinct strings, got ["a","a"]'],
    ["an example that is not a category", (card) => card.inputs.push({ name: "plan", type: "category", encoding: { b: 1, a: 0 }, example: "c" }), 'inputs: field "plan": example must be one of: a, b; got "c"'],
    ["a date that is not in the calendar", (card) => card.inputs.push({ name: "day", type: "date", minimum: "2023-02-30", maximum: "2024-01-01" }), 'inputs: field "day": minimum must be a date YYYY-MM-DD, got "2023-02-30"'],
    ["dates the wrong way round", (card) => card.inputs.push({ name: "day", type: "date", minimum: "2025-01-01", maximum: "2024-01-01" }), 'inputs: field "day": minimum 2025-01-01 is after maximum 2024-01-01'],
    ["raw categories in the matrix layout", (card) => card.inputs.push({ name: "plan", type: "category", transform: "raw", categories: ["a"] }), 'inputs: field "plan": transform raw cannot feed the matrix layout'],
    ["onehot in the columns layout", (card) => {
        card.input_layout = "columns";
        card.inputs.push({ name: "plan", type: "category", transform: "onehot", categories: ["a", "b"] });
    }, 'inputs: field "plan": transform onehot cannot feed the columns layout'],
    ["no onnx object", (card) => (card.onnx = []), "onnx must be an object, got array"],
    ["no ONNX input name", (card) => delete card.onnx.input, "onnx.input is missing"],
    ["an input dtype", (card) => (card.onnx.input_dtype = "float16"), 'onnx.input_dtype must be one of float32, float64, int64, got "float16"'],
    ["a number into int64", (card) => (card.onnx.input_dtype = "int64"), 'field "monthly_fee": a number cannot feed an int64 input'],
    ["no outputs", (card) => delete card.onnx.outputs, "onnx.outputs must be an object, got nothing"],
    ["an output of the other task", (card) => (card.onnx.outputs.value = "variable"), 'onnx.outputs: "value" is not an output of a classification model (label, probabilities)'],
    ["the label output missing", (card) => delete card.onnx.outputs.label, "onnx.outputs.label is missing"],
    ["no classes", (card) => delete card.classes, "classes must be a non-empty list of labels, got nothing"],
    ["mixed classes", (card) => (card.classes = [0, "1"]), "classes must be all whole numbers or all strings"],
    ["classes twice", (card) => (card.classes = [1, 1]), "classes must be distinct"],
    ["metrics that are not an object", (card) => (card.metrics = [0.9]), "metrics must be an object, got array"],
];

describe("each card rule refuses the repository, naming model, file and problem", () => {
    test.each(cardCases)("%s", (_what, edit, problem) => {
        const dir = copyOf();
        editCard(dir, CLASSIFIER, edit);
        const problems = problemsOf(dir);
        expect(problems).toContain(CARD + problem);
        expect(problems.every((line) => line.startsWith(CARD))).toBe(true);
    });

    test("a regression card names its value output", () => {
        const dir = copyOf();
        editCard(dir, REGRESSOR, (card) => (card.onnx.outputs = { label: "variable" }));
        expect(problemsOf(dir)).toEqual([
            `${REGRESSOR}/model.json: onnx.outputs: "label" is not an output of a regression model (value)`,
            `${REGRESSOR}/model.json: onnx.outputs.value is missing`,
        ]);
    });

    test("a card that is not an object", () => {
        const dir = copyOf();
        fs.writeFileSync(cardPath(dir, CLASSIFIER), "[]");
        expect(problemsOf(dir)).toEqual([`${CARD}the card must be a JSON object, got array`]);
    });

    test("a card that is not JSON, or missing", () => {
        const dir = copyOf();
        fs.writeFileSync(cardPath(dir, CLASSIFIER), "{ not json");
        fs.rmSync(cardPath(dir, REGRESSOR));
        const problems = problemsOf(dir);
        expect(problems[0]).toMatch(new RegExp(`^${esc(CARD)}is not valid JSON: `));
        expect(problems[1]).toBe(`${REGRESSOR}/model.json: cannot be read: it does not exist`);
    });
});

describe("the ONNX file must match the card", () => {
    test("a SHA-256 that is not the file's", () => {
        const dir = copyOf();
        editCard(dir, CLASSIFIER, (card) => (card.sha256 = "0".repeat(64)));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}its SHA-256 [0-9a-f]{64} is not the card's 0{64}$`));
    });

    test("a changed byte", () => {
        const dir = copyOf();
        const file = path.join(dir, CLASSIFIER, "model.onnx");
        const bytes = fs.readFileSync(file);
        bytes[bytes.length - 1] ^= 1;
        fs.writeFileSync(file, bytes);
        expect(problemsOf(dir)[0]).toMatch(new RegExp(`^${esc(ONNX)}its SHA-256 `));
    });

    test("a missing ONNX file", () => {
        const dir = copyOf();
        fs.rmSync(path.join(dir, CLASSIFIER, "model.onnx"));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}cannot be read: it does not exist$`));
    });

    test("a truncated ONNX file (its hash in the card)", () => {
        const dir = copyOf();
        replaceOnnx(dir, CLASSIFIER, fs.readFileSync(path.join(BUILT_IN, CLASSIFIER, "model.onnx")).subarray(0, 1000));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}is not a valid ONNX model: .* is truncated`));
    });

    test("a file that is not ONNX at all", () => {
        const dir = copyOf();
        replaceOnnx(dir, CLASSIFIER, Buffer.from('{"not": "onnx"}'));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}is not a valid ONNX model: `));
    });

    test("a file larger than 512 MiB is refused unread", () => {
        const dir = copyOf();
        fs.truncateSync(path.join(dir, CLASSIFIER, "model.onnx"), MAX_FILE_BYTES + 1);
        expectOnly(dir, new RegExp(`^${esc(ONNX)}is ${MAX_FILE_BYTES + 1} bytes, more than the 512 MiB allowed$`));
    });

    test("a field more than the ONNX input's width", () => {
        const dir = copyOf();
        editCard(dir, CLASSIFIER, (card) => card.inputs.push(numberField));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}ONNX input "X" has 3 columns, the fields' feature count is 4$`));
    });

    test("one-hot and date-parts widths count", () => {
        const dir = copyOf();
        const onehot = { name: "plan", type: "category", transform: "onehot", categories: ["a", "b"] };
        editCard(dir, CLASSIFIER, (card) => (card.inputs = [onehot, { name: "day", type: "date", minimum: "2024-01-01", maximum: "2024-12-31" }]));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}ONNX input "X" has 3 columns, the fields' feature count is 6$`));
        editCard(dir, CLASSIFIER, (card) => (card.inputs = [onehot, numberField]));
        expect(readModelRepository(dir)).toHaveLength(2);
    });

    test.each([
        ["another input name", (card: any) => (card.onnx.input = "features"), 'the ONNX inputs ["X"] are not the card\'s one input "features"'],
        ["another element type", (card: any) => (card.onnx.input_dtype = "float64"), 'ONNX input "X" is tensor(float), the card\'s input_dtype float64 needs tensor(double)'],
        ["an output the model lacks", (card: any) => (card.onnx.outputs.label = "output_label"), 'onnx.outputs.label: the model has no output "output_label" (outputs: label, probabilities)'],
        ["string classes for an int64 label", (card: any) => (card.classes = ["stay", "leave"]), 'ONNX output "label" (label) is tensor(int64), expected tensor(string)'],
        ["a class more than probability columns", (card: any) => (card.classes = [0, 1, 2]), 'ONNX output "probabilities" has 2 columns, the number of classes is 3'],
        ["probabilities that are labels", (card: any) => (card.onnx.outputs.probabilities = "label"), 'ONNX output "label" (probabilities) is tensor(int64), expected tensor(float) or tensor(double)'],
    ])("%s", (_what, edit, problem) => {
        const dir = copyOf();
        editCard(dir, CLASSIFIER, edit);
        expect(problemsOf(dir)).toEqual([ONNX + problem]);
    });

    test("the columns layout: one input per field, of the field's kind", () => {
        const dir = copyOf(examples);
        const pipeline = "churn-pipeline";
        editCard(dir, pipeline, (card) => {
            card.inputs = card.inputs.filter((field: any) => field.name !== "support_calls");
            const plan = card.inputs.find((field: any) => field.name === "plan");
            Object.assign(plan, { transform: "label", encoding: { basic: 0, family: 1, premium: 2 } });
        });
        expect(problemsOf(dir)).toEqual([
            `${pipeline}/model.onnx: the ONNX inputs ["customer_age","monthly_fee","plan","support_calls"] are not the card's fields ["customer_age","monthly_fee","plan"]`,
            `${pipeline}/model.onnx: ONNX input "plan" is tensor(string), field "plan" needs tensor(float) or tensor(double) or tensor(int64)`,
        ]);
    });

    test("a ZipMap output (a sequence of maps) is not a tensor", () => {
        const dir = copyOf();
        replaceOnnx(dir, CLASSIFIER, onnxModel({ inputs: [valueInfo("X", tensorType(FLOAT, ["N", 3]))], outputs: [valueInfo("label", tensorType(INT64, ["N"])), valueInfo("probabilities", zipMapType)] }));
        expectOnly(dir, new RegExp(`^${esc(ONNX)}ONNX output "probabilities" \\(probabilities\\) is seq\\(map\\(int64,tensor\\(float\\)\\)\\), expected tensor\\(float\\) or tensor\\(double\\) \\(convert without a ZipMap\\)$`));
    });
});

describe("the repository's layout", () => {
    test("an extra file in a model folder", () => {
        const dir = copyOf();
        fs.writeFileSync(path.join(dir, CLASSIFIER, "notes.txt"), "x");
        fs.mkdirSync(path.join(dir, CLASSIFIER, "data"));
        expect(problemsOf(dir)).toEqual([
            `${CLASSIFIER}/data: is not part of the model; a model folder holds model.json, the ONNX file its card names and README.md only`,
            `${CLASSIFIER}/notes.txt: is not part of the model; a model folder holds model.json, the ONNX file its card names and README.md only`,
        ]);
    });

    test("symbolic links: the ONNX file, an extra entry, a model folder", () => {
        const dir = copyOf();
        const onnx = path.join(dir, CLASSIFIER, "model.onnx");
        fs.renameSync(onnx, path.join(scratch, `outside-${copies}.onnx`));
        fs.symlinkSync(path.join(scratch, `outside-${copies}.onnx`), onnx);
        fs.symlinkSync(cardPath(dir, CLASSIFIER), path.join(dir, CLASSIFIER, "README.md"));
        fs.symlinkSync(path.join(BUILT_IN, REGRESSOR), path.join(dir, "linked-model"));
        expect(problemsOf(dir)).toEqual([
            "linked-model: is a symbolic link; a repository holds plain folders and files, as the image build copies them",
            `${CLASSIFIER}/README.md: is a symbolic link; a model is plain files, as the image build copies them`,
            `${ONNX}is a symbolic link; a model is plain files, as the image build copies them`,
        ]);
    });

    test("an empty repository", () => {
        const dir = path.join(scratch, `empty-${++copies}`);
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, "README.md"), "nothing yet");
        expect(problemsOf(dir)).toEqual([`no model folder in ${dir}`]);
    });

    test("a missing repository", () => {
        const dir = path.join(scratch, "no-such-repository");
        expect(problemsOf(dir)).toEqual(["the repository cannot be read: it does not exist"]);
    });

    test("files and hidden entries at the top level", () => {
        const dir = copyOf();
        fs.writeFileSync(path.join(dir, "model.onnx"), "x");
        fs.mkdirSync(path.join(dir, ".cache"));
        expect(problemsOf(dir)).toEqual([
            ".cache: a hidden entry; the top level holds model folders (and README*, .gitignore, .dockerignore) only",
            "model.onnx: not a model folder; the top level holds model folders (and README*, .gitignore, .dockerignore) only",
        ]);
    });

    test("every problem of every model is reported at once", () => {
        const dir = copyOf();
        editCard(dir, CLASSIFIER, (card) => {
            delete card.task;
            card.inputs[0].type = "text";
        });
        editCard(dir, REGRESSOR, (card) => (card.sha256 = "1".repeat(64)));
        fs.writeFileSync(path.join(dir, "stray.txt"), "x");
        const problems = problemsOf(dir);
        expect(problems).toEqual([
            "stray.txt: not a model folder; the top level holds model folders (and README*, .gitignore, .dockerignore) only",
            `${CARD}task is missing`,
            `${CARD}inputs: field "monthly_fee": type must be one of number, integer, category, date, got "text"`,
            expect.stringMatching(new RegExp(`^${REGRESSOR}/model.onnx: its SHA-256 [0-9a-f]{64} is not the card's 1{64}$`)),
        ]);
    });
});

// A small protobuf writer, to build ONNX models the reader must take apart.
const FLOAT = 1;
const INT64 = 7;
function varint(value: number | bigint): Buffer {
    const bytes: number[] = [];
    let rest = BigInt.asUintN(64, BigInt(value));
    do {
        bytes.push(Number(rest & 0x7fn) | (rest > 0x7fn ? 0x80 : 0));
        rest >>= 7n;
    } while (rest > 0n);
    return Buffer.from(bytes);
}
const message = (field: number, ...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
};
const text = (field: number, value: string) => message(field, Buffer.from(value));
const number = (field: number, value: number | bigint) => Buffer.concat([varint(field << 3), varint(value)]);
const fixed32 = (field: number) => Buffer.concat([varint((field << 3) | 5), Buffer.alloc(4, 0xff)]);
const fixed64 = (field: number) => Buffer.concat([varint((field << 3) | 1), Buffer.alloc(8, 0xff)]);
// TypeProto: tensor_type (1) of elem_type (1) and shape (2) of dims (1) with dim_value (1) or dim_param (2).
const tensorType = (elemType: number, dims: (number | string)[]) =>
    message(1, number(1, elemType), message(2, ...dims.map((dim) => message(1, typeof dim === "number" ? number(1, dim) : text(2, dim)))));
// sequence_type (4) of elem_type (1): map_type (5) of key_type (1), value_type (2).
const zipMapType = message(4, message(1, message(5, number(1, INT64), message(2, tensorType(FLOAT, [])))));
const valueInfo = (name: string, type: Buffer) => Buffer.concat([text(1, name), message(2, type)]);
function onnxModel(graph: { inputs: Buffer[]; outputs: Buffer[]; initializers?: string[] }): Buffer {
    return Buffer.concat([
        number(1, 8), // ir_version
        text(2, "test"), // producer_name
        message(8, text(1, ""), number(2, 17)), // opset_import
        message(7,
            message(1, text(1, "X"), text(2, "label"), text(4, "Identity")), // a node
            text(2, "graph"),
            ...(graph.initializers ?? []).map((name) => message(5, number(1, 1), number(2, FLOAT), text(8, name), message(9, Buffer.alloc(16)))),
            ...graph.inputs.map((input) => message(11, input)),
            ...graph.outputs.map((output) => message(12, output)),
        ),
    ]);
}

describe("the protobuf reader", () => {
    test("reads inputs, outputs, shapes and types; initializers are not inputs", () => {
        const bytes = onnxModel({
            inputs: [valueInfo("X", tensorType(FLOAT, ["N", 3])), valueInfo("W", tensorType(FLOAT, [4]))],
            outputs: [valueInfo("label", tensorType(INT64, [-1])), valueInfo("probabilities", zipMapType)],
            initializers: ["W"],
        });
        expect(parseOnnxSignature(bytes)).toEqual({
            inputs: [{ name: "X", type: { kind: "tensor", elemType: FLOAT, shape: ["N", 3] } }],
            outputs: [
                { name: "label", type: { kind: "tensor", elemType: INT64, shape: [-1] } },
                { name: "probabilities", type: { kind: "sequence", elem: { kind: "map", keyType: INT64, value: { kind: "tensor", elemType: FLOAT, shape: [] } } } },
            ],
        });
    });

    test("skips fixed32, fixed64, varint and unknown length-delimited fields anywhere", () => {
        const input = Buffer.concat([fixed32(20), valueInfo("X", Buffer.concat([fixed64(20), tensorType(FLOAT, [2])])), number(21, 2n ** 63n), text(22, "doc")]);
        const bytes = Buffer.concat([fixed64(30), fixed32(31), number(32, -1), onnxModel({ inputs: [input], outputs: [] }), fixed32(33)]);
        expect(parseOnnxSignature(bytes).inputs).toEqual([{ name: "X", type: { kind: "tensor", elemType: FLOAT, shape: [2] } }]);
    });

    test.each([
        ["an empty file", Buffer.alloc(0), "it holds no graph (ModelProto field 7)"],
        ["a group (wire type 3)", Buffer.from([0x0b]), "the ModelProto holds field 1 of wire type 3, which ONNX does not use"],
        ["a length past the end", Buffer.concat([varint((7 << 3) | 2), varint(100), Buffer.alloc(10)]), "the ModelProto is truncated (field 7 runs past its end)"],
        ["a varint cut short", Buffer.from([0x08, 0x80]), "the ModelProto is truncated (a number runs past its end)"],
        ["a varint of 11 bytes", Buffer.concat([Buffer.from([0x08]), Buffer.alloc(11, 0x80)]), "the ModelProto holds a number longer than 10 bytes"],
        ["a fixed64 cut short", Buffer.concat([varint((3 << 3) | 1), Buffer.alloc(3)]), "the ModelProto is truncated (a field runs past its end)"],
        ["field number 0", Buffer.from([0x02, 0x00]), "the ModelProto holds a field numbered 0"],
        ["a graph that is a number", number(7, 1), "the ModelProto field 7 has wire type 0, expected 2"],
        ["a broken graph input", message(7, message(11, Buffer.from([0xff]))), "a graph input is truncated (a number runs past its end)"],
    ])("refuses %s", (_what, bytes, problem) => {
        expect(() => parseOnnxSignature(bytes)).toThrow(problem);
    });
});
