// Shared script for every page: API calls, error messages, the prediction forms and the health widget.
// Loaded as an external file (no inline scripts) so a strict Content-Security-Policy can apply.
// All API paths are relative to this origin, so the pages work behind any host and port.
'use strict';

const REQUEST_TIMEOUT_MS = 15000;

const STATUS_SUMMARIES = {
  400: 'Bad request',
  404: 'Not found',
  405: 'Method not allowed',
  413: 'Request too large',
  415: 'Unsupported content type',
  429: 'Too many requests, slow down',
  500: 'Server error',
  502: 'No API replica could answer',
  503: 'The API is unavailable right now',
  504: 'The API took too long to answer',
};

// How each model's answer is shown. The legacy keys are the tutorial's response fields,
// read when a response lacks the newer "prediction" field.
const RESULT_VIEWS = {
  'decision-tree-classifier': {
    legacyKey: 'Predicted Class = ',
    label: 'Prediction',
    describe(value) {
      const churns = Number(value) === 1;
      return { headline: churns ? 'Will churn' : 'Will stay', detail: `Class ${value}` };
    },
  },
  'decision-tree-regressor': {
    legacyKey: 'Predicted Percentage Profit per Unit = ',
    label: 'Predicted percentage profit per unit',
    describe(value) {
      return { headline: `${Number(value).toFixed(2)} %` };
    },
  },
};

class ApiError extends Error {
  constructor(message, invalidFields = []) {
    super(message);
    this.invalidFields = invalidFields;
  }
}

// Fetches a JSON API path; throws ApiError with a human-readable message for every failure.
async function callApi(path, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  let body;
  try {
    response = await fetch(path, {
      ...options,
      cache: 'no-store',
      signal: controller.signal,
      headers: { Accept: 'application/json', ...options.headers },
    });
    body = parseJson(await response.text());
  } catch (err) {
    throw new ApiError(err.name === 'AbortError'
      ? `Timeout: the API did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`
      : 'Network error: could not reach the API');
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw failureFrom(response, body);
  if (body === null || typeof body !== 'object') {
    throw new ApiError(`Unexpected answer from the API (HTTP ${response.status}, not JSON)`);
  }
  return body;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null; // e.g. an HTML error page from a proxy
  }
}

// Turns an error response (JSON or not) into one readable sentence plus the fields to highlight.
function failureFrom(response, body) {
  const apiError = body !== null && typeof body === 'object' ? body : {};
  const problems = (Array.isArray(apiError.details) ? apiError.details : [])
    .filter((detail) => detail && detail.field)
    .map((detail) => ({ field: String(detail.field), problem: detail.problem || 'invalid value' }));
  if (problems.length === 0 && apiError.field) {
    problems.push({ field: String(apiError.field), problem: apiError.message || 'invalid value' });
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
    return new ApiError(`Validation error — ${list}`, problems.map((p) => p.field));
  }
  let message = STATUS_SUMMARIES[response.status] || 'HTTP error';
  message += typeof apiError.message === 'string' && apiError.message
    ? ` — ${apiError.message}`
    : ` (HTTP ${response.status})`;
  const retryAfter = response.headers.get('Retry-After');
  if (response.status === 429 && retryAfter) message += ` (retry after ${retryAfter} s)`;
  return new ApiError(message);
}

function showOnly(visible, hidden) {
  hidden.hidden = true;
  visible.hidden = false;
}

function makeElement(tag, className, text) {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text;
  return element;
}

// ----- Model catalogue (GET /api/v1/models) -----

// The catalogue's shape may vary: a list, {models: [...]} or {models: {name: {...}}}.
function findModel(catalogue, name) {
  let models = catalogue.models ?? catalogue;
  if (!Array.isArray(models)) {
    models = Object.entries(models).map(([key, model]) => ({ name: key, ...model }));
  }
  return models.find((model) => model && model.name === name);
}

function describeRange(property) {
  const min = property.minimum ?? property.exclusiveMinimum;
  const max = property.maximum ?? property.exclusiveMaximum;
  const kind = property.type === 'integer' ? 'A whole number' : 'A number';
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
  if (min !== undefined) return `${kind}, at least ${min}`;
  if (max !== undefined) return `${kind}, at most ${max}`;
  return null;
}

function replaceOptions(select, values) {
  const current = select.value;
  select.replaceChildren(...values.map((value) => new Option(String(value), String(value))));
  select.value = values.map(String).includes(current) ? current : String(values[0]);
}

// Uses the model's input schema for select options and number ranges; the page's
// built-in options stay when the schema is missing or incomplete.
function applySchema(form, schema) {
  for (const [name, property] of Object.entries(schema?.properties ?? {})) {
    const input = form.elements.namedItem(name);
    if (!input || !property) continue;
    if (input.tagName === 'SELECT' && Array.isArray(property.enum) && property.enum.length > 0) {
      replaceOptions(input, property.enum);
    }
    const hint = document.getElementById(`${name}-hint`);
    const range = input.dataset.kind === 'number' ? describeRange(property) : null;
    if (hint && range) hint.textContent = range;
  }
}

function formatMetric(value) {
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
}

function showModelInfo(model) {
  const info = document.getElementById('model-info');
  const parts = [];
  if (model.version) parts.push(`Model version ${model.version}`);
  for (const [key, value] of Object.entries(model.metrics ?? {})) {
    if (typeof value === 'number') parts.push(`${key.replace(/_/g, ' ')} ${formatMetric(value)}`);
  }
  if (parts.length === 0) return;
  info.textContent = parts.join(' · ');
  info.hidden = false;
}

async function loadModelDetails(form) {
  try {
    const model = findModel(await callApi('/api/v1/models'), form.dataset.model);
    if (!model) return;
    applySchema(form, model.input_schema);
    showModelInfo(model);
  } catch {
    // The form still works with its built-in options; prediction errors are reported on submit.
  } finally {
    updateCurlPreview(form);
  }
}

// ----- Prediction forms -----

function predictionPath(model) {
  return `/api/v1/models/${encodeURIComponent(model)}/predictions`;
}

// Numbers are sent as JSON numbers; anything that is not a number is sent as typed,
// so the server rejects it and names the field. Empty fields are left out.
function readPayload(form) {
  const payload = {};
  for (const input of form.querySelectorAll('input[name], select[name]')) {
    const raw = input.value;
    if (raw.trim() === '') continue;
    const number = Number(raw.trim());
    payload[input.name] = input.dataset.kind === 'number' && Number.isFinite(number) ? number : raw;
  }
  return payload;
}

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function updateCurlPreview(form) {
  const preview = document.getElementById('curl-preview');
  if (!preview) return;
  const url = `${window.location.origin}${predictionPath(form.dataset.model)}`;
  preview.textContent = [
    `curl --insecure -X POST ${url} \\`,
    '  -H "Content-Type: application/json" \\',
    `  -d ${shellQuote(JSON.stringify(readPayload(form)))}`,
  ].join('\n');
}

function renderPrediction(resultBox, model, answer) {
  const view = RESULT_VIEWS[model];
  const value = answer.prediction ?? answer[view.legacyKey];
  if (value === undefined || value === null || Number.isNaN(Number(value))) {
    throw new ApiError('Unexpected answer from the API: no prediction in the response');
  }
  const { headline, detail } = view.describe(value);
  const meta = [detail, answer.model_version && `model version ${answer.model_version}`]
    .filter(Boolean).join(' · ');
  resultBox.replaceChildren(
    makeElement('p', 'result-label', view.label),
    makeElement('p', 'result-value', headline),
  );
  if (meta) resultBox.append(makeElement('p', 'result-detail', meta));
}

function markInvalid(form, fieldNames) {
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  for (const name of fieldNames) {
    const input = form.elements.namedItem(name);
    if (input) input.setAttribute('aria-invalid', 'true');
  }
}

function setUpPredictionForm(form) {
  const resultBox = document.getElementById('result');
  const errorBox = document.getElementById('error');
  const button = document.getElementById('predict');
  const model = form.dataset.model;

  form.addEventListener('input', () => updateCurlPreview(form));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const answer = await callApi(predictionPath(model), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(readPayload(form)),
      });
      renderPrediction(resultBox, model, answer);
      markInvalid(form, []);
      showOnly(resultBox, errorBox);
    } catch (err) {
      errorBox.textContent = err instanceof ApiError ? err.message : `Unexpected error: ${err.message}`;
      markInvalid(form, err.invalidFields ?? []);
      showOnly(errorBox, resultBox);
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  updateCurlPreview(form);
  loadModelDetails(form);
}

// ----- Health widget: shows which replica answered, to make load balancing visible -----

function setUpHealthWidget(button) {
  const status = document.getElementById('health-result');
  const tally = document.getElementById('health-tally');
  const errorBox = document.getElementById('health-error');
  const answersPerReplica = new Map();

  async function askHealth() {
    button.disabled = true;
    const started = performance.now();
    try {
      const health = await callApi('/api/health');
      const elapsed = Math.round(performance.now() - started);
      const replica = String(health.replica ?? 'unknown replica');
      status.replaceChildren('Replica ', makeElement('strong', '', replica),
        ` answered “${health.status ?? '?'}” in ${elapsed} ms.`);
      answersPerReplica.set(replica, (answersPerReplica.get(replica) ?? 0) + 1);
      tally.replaceChildren(...[...answersPerReplica].map(([name, count]) => makeElement('li', '', `${name} × ${count}`)));
      tally.hidden = false;
      errorBox.hidden = true;
    } catch (err) {
      status.textContent = 'No answer.';
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener('click', askHealth);
  askHealth();
}

const predictionForm = document.getElementById('prediction-form');
if (predictionForm) setUpPredictionForm(predictionForm);

const healthButton = document.getElementById('health-check');
if (healthButton) setUpHealthWidget(healthButton);
