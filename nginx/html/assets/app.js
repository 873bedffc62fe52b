// Shared script for every page: API calls, error messages, the model list, the generic
// prediction form and the health widget. Every model page is built from the model's card
// as GET /api/v1/models describes it, so a new model in the repository needs no new page.
// Loaded as an external file (no inline scripts or styles) so a strict Content-Security-Policy
// applies. All API paths are relative to this origin, so the pages work behind any host and port.
'use strict';

const REQUEST_TIMEOUT_MS = 15000;
const MODELS_PATH = '/api/v1/models';

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

class ApiError extends Error {
  constructor(message, problems = []) {
    super(message);
    this.problems = problems; // [{field, problem}] for a validation error
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

// Turns an error response (JSON or not) into one readable sentence plus the fields' problems.
function failureFrom(response, body) {
  const apiError = body !== null && typeof body === 'object' ? body : {};
  const problems = (Array.isArray(apiError.details) ? apiError.details : [])
    .filter((detail) => detail && detail.field)
    .map((detail) => ({ field: String(detail.field), problem: String(detail.problem || 'invalid value') }));
  if (problems.length === 0 && apiError.field) {
    problems.push({ field: String(apiError.field), problem: String(apiError.message || 'invalid value') });
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
    return new ApiError(`Validation error — ${list}`, problems);
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

// An element with optional class and children (strings become text, never HTML).
function el(tag, className, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

// ----- Model catalogue (GET /api/v1/models) -----

// {models: [...]} as the API answers; a bare list or {models: {name: {...}}} are read too.
function modelsOf(catalogue) {
  let models = catalogue && typeof catalogue === 'object' && 'models' in catalogue ? catalogue.models : catalogue;
  if (models && typeof models === 'object' && !Array.isArray(models)) {
    models = Object.entries(models).map(([key, model]) => ({ name: key, ...model }));
  }
  if (!Array.isArray(models)) throw new ApiError('Unexpected answer from the API: no list of models');
  return models.filter((model) => model && typeof model.name === 'string');
}

let cataloguePromise = null;
function loadModels() {
  cataloguePromise ??= callApi(MODELS_PATH).then(modelsOf);
  return cataloguePromise;
}

function modelPagePath(name) {
  return `/model.html?name=${encodeURIComponent(name)}`;
}

function predictionPath(model) {
  const endpoint = typeof model.endpoint === 'string' ? model.endpoint : '';
  return endpoint.startsWith('/api/') ? endpoint : `/api/v1/models/${encodeURIComponent(model.name)}/predictions`;
}

const TYPES = new Set(['number', 'integer', 'category', 'date']);

// The fields of one record, from the card's inputs (or, failing those, the input schema).
function fieldsOf(model) {
  const schema = model.input_schema?.properties ?? {};
  if (Array.isArray(model.inputs) && model.inputs.length > 0) {
    return model.inputs.filter((input) => input && typeof input.name === 'string').map((input) => {
      const property = schema[input.name] ?? {};
      let choices = null;
      if (Array.isArray(input.categories)) choices = input.categories;
      else if (input.encoding && typeof input.encoding === 'object') {
        choices = Object.keys(input.encoding).sort((a, b) => Number(input.encoding[a]) - Number(input.encoding[b]));
      } else if (Array.isArray(property.enum)) choices = property.enum;
      return {
        name: input.name,
        type: TYPES.has(input.type) ? input.type : 'text',
        minimum: input.minimum ?? property.minimum,
        maximum: input.maximum ?? property.maximum,
        choices: choices && choices.map(String),
        description: input.description ?? property.description,
        example: input.example ?? property.example ?? property.examples?.[0],
      };
    });
  }
  return Object.entries(schema).map(([name, property]) => {
    let type = 'text';
    if (Array.isArray(property.enum)) type = 'category';
    else if (property.type === 'number' || property.type === 'integer') type = property.type;
    else if (property.format === 'date') type = 'date';
    return {
      name,
      type,
      minimum: property.minimum,
      maximum: property.maximum,
      choices: Array.isArray(property.enum) ? property.enum.map(String) : null,
      description: property.description,
      example: property.example ?? property.examples?.[0],
    };
  });
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

// The value a field starts with: the card's example, else something the card allows.
function startValue(field) {
  const { example, minimum, maximum } = field;
  if (field.type === 'category') {
    const choices = field.choices ?? [];
    return choices.includes(String(example)) ? String(example) : (choices[0] ?? '');
  }
  if (field.type === 'number' || field.type === 'integer') {
    if (typeof example === 'number' && Number.isFinite(example)) return example;
    if (typeof minimum === 'number') return minimum;
    return typeof maximum === 'number' ? Math.min(0, maximum) : 0;
  }
  if (field.type === 'date') {
    if (typeof example === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(example)) return example;
    let date = today();
    if (typeof minimum === 'string' && date < minimum) date = minimum;
    if (typeof maximum === 'string' && date > maximum) date = maximum;
    return date;
  }
  return example === undefined || example === null ? '' : String(example);
}

function exampleRecord(model) {
  return Object.fromEntries(fieldsOf(model).map((field) => [field.name, startValue(field)]));
}

function describeField(field) {
  const { minimum: min, maximum: max } = field;
  let range = null;
  if (field.type === 'number' || field.type === 'integer') {
    const kind = field.type === 'integer' ? 'A whole number' : 'A number';
    if (min !== undefined && max !== undefined) range = `${kind} from ${min} to ${max}.`;
    else if (min !== undefined) range = `${kind}, at least ${min}.`;
    else if (max !== undefined) range = `${kind}, at most ${max}.`;
    else range = `${kind}.`;
  } else if (field.type === 'date') {
    if (min !== undefined && max !== undefined) range = `A date from ${min} to ${max}.`;
    else if (min !== undefined) range = `A date, ${min} or later.`;
    else if (max !== undefined) range = `A date, ${max} or earlier.`;
    else range = 'A date.';
  } else if (field.type === 'category' && field.choices) {
    range = `One of ${field.choices.length} values.`;
  }
  const description = typeof field.description === 'string' ? field.description.trim() : '';
  const sentence = description && !/[.!?]$/.test(description) ? `${description}.` : description;
  return [sentence, range].filter(Boolean).join(' ');
}

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function curlCommand(path, payload) {
  return [
    `curl --insecure -X POST ${window.location.origin}${path} \\`,
    '  -H "Content-Type: application/json" \\',
    `  -d ${shellQuote(JSON.stringify(payload))}`,
  ].join('\n');
}

function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en', { maximumFractionDigits: 4, useGrouping: false });
}

function formatMetric(value) {
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
}

function modelSummary(model) {
  const parts = [];
  if (model.version !== undefined) parts.push(`version ${model.version}`);
  if (model.task) parts.push(String(model.task));
  for (const [key, value] of Object.entries(model.metrics ?? {})) {
    if (typeof value === 'number') parts.push(`${key.replace(/_/g, ' ')} ${formatMetric(value)}`);
  }
  return parts;
}

// ----- Overview: the list of served models -----

function modelCard(model, index) {
  const titleId = `model-${index}-title`;
  const path = predictionPath(model);
  const facts = [
    el('span', 'badge', String(model.task ?? 'model')),
    model.version !== undefined ? el('span', 'badge', `version ${model.version}`) : null,
  ];
  const fields = fieldsOf(model).map((field) => field.name);
  const card = el('article', 'card model-card',
    el('div', 'model-card-head',
      el('h3', null, el('a', null, model.name)),
      el('span', 'badges', ...facts)),
    typeof model.description === 'string' ? el('p', null, model.description) : null,
    fields.length > 0 ? el('p', 'muted model-fields', `Inputs: ${fields.join(', ')}`) : null,
    el('p', 'go', el('a', null, 'Open the form', el('span', 'visually-hidden', ` for ${model.name}`), ' ', el('span', 'arrow', '→'))),
    el('div', 'endpoint',
      el('h4', null, el('span', 'method method-post', 'POST'), el('code', null, path)),
      el('pre', null, el('code', 'curl-example', curlCommand(path, exampleRecord(model))))),
  );
  card.dataset.model = model.name;
  card.setAttribute('aria-labelledby', titleId);
  card.querySelector('h3').id = titleId;
  for (const link of card.querySelectorAll('a')) link.href = modelPagePath(model.name);
  card.querySelector('.arrow').setAttribute('aria-hidden', 'true');
  return card;
}

async function setUpModelList(list) {
  const status = document.getElementById('models-status');
  const errorBox = document.getElementById('models-error');
  list.setAttribute('aria-busy', 'true');
  try {
    const models = await loadModels();
    list.replaceChildren(...models.map(modelCard));
    status.textContent = models.length === 1
      ? 'One model is served.'
      : `${models.length === 0 ? 'No' : models.length} models are served.`;
  } catch (err) {
    status.textContent = 'The list of models could not be loaded.';
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.removeAttribute('aria-busy');
  }
}

// ----- The generic model page -----

function fieldControl(field, id) {
  let control;
  if (field.type === 'category' && field.choices) {
    control = el('select', null, ...field.choices.map((choice) => new Option(choice, choice)));
  } else {
    control = el('input');
    control.autocomplete = 'off';
    if (field.type === 'number' || field.type === 'integer') {
      control.type = 'number';
      control.step = field.type === 'integer' ? '1' : 'any';
      control.inputMode = field.type === 'integer' ? 'numeric' : 'decimal';
    } else {
      control.type = field.type === 'date' ? 'date' : 'text';
    }
    if (field.minimum !== undefined) control.min = String(field.minimum);
    if (field.maximum !== undefined) control.max = String(field.maximum);
  }
  control.id = id;
  control.name = field.name;
  control.dataset.type = field.type;
  control.value = String(startValue(field));
  control.setAttribute('aria-describedby', `${id}-error ${id}-hint`);
  return control;
}

function buildFields(container, fields) {
  container.replaceChildren(...fields.map((field, index) => {
    const id = `field-${index}`;
    const label = el('label', null, field.name);
    label.htmlFor = id;
    const error = el('span', 'field-error');
    error.id = `${id}-error`;
    error.hidden = true;
    const hint = el('span', 'hint', describeField(field));
    hint.id = `${id}-hint`;
    const wrapper = el('div', 'field', label, fieldControl(field, id), error, hint);
    wrapper.dataset.field = field.name;
    return wrapper;
  }));
}

function controlsOf(form) {
  return [...form.querySelectorAll('input[name], select[name]')];
}

// Numbers are sent as JSON numbers, dates and categories as strings; empty fields are
// left out, so the server names them as missing.
function readPayload(form) {
  const payload = {};
  for (const control of controlsOf(form)) {
    const raw = control.value.trim();
    if (raw === '') continue;
    const number = Number(raw);
    const numeric = control.dataset.type === 'number' || control.dataset.type === 'integer';
    payload[control.name] = numeric && Number.isFinite(number) ? number : raw;
  }
  return payload;
}

// Marks the named fields invalid with their problem next to them; clears all others.
function showFieldProblems(form, problems) {
  const byField = new Map();
  for (const { field, problem } of problems) {
    byField.set(field, byField.has(field) ? `${byField.get(field)}; ${problem}` : problem);
  }
  let first = null;
  for (const control of controlsOf(form)) {
    const error = document.getElementById(`${control.id}-error`);
    const problem = byField.get(control.name);
    if (problem) {
      control.setAttribute('aria-invalid', 'true');
      error.textContent = problem;
      error.hidden = false;
      first ??= control;
    } else {
      control.removeAttribute('aria-invalid');
      error.textContent = '';
      error.hidden = true;
    }
  }
  return first;
}

function labelFromKey(key, fallback) {
  const label = typeof key === 'string' ? key.replace(/[\s=:]+$/, '').trim() : '';
  return label && label !== 'prediction' ? label : fallback;
}

function probabilityList(model, probabilities, predicted) {
  const known = Array.isArray(model.classes) ? model.classes.map(String) : [];
  const labels = [...known.filter((c) => c in probabilities),
    ...Object.keys(probabilities).filter((c) => !known.includes(c))];
  const list = el('ul', 'probabilities');
  list.setAttribute('aria-label', 'Probability of each class');
  for (const label of labels) {
    const p = Number(probabilities[label]);
    if (!Number.isFinite(p)) continue;
    const percent = `${(p * 100).toFixed(1)} %`;
    const fill = el('span', 'probability-fill');
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`; // CSSOM: allowed under style-src 'self'
    const bar = el('span', 'probability-bar', fill);
    bar.setAttribute('aria-hidden', 'true');
    const item = el('li', label === predicted ? 'predicted' : null,
      el('span', 'probability-class', label), bar, el('span', 'probability-value', percent));
    list.append(item);
  }
  return list;
}

function renderPrediction(resultBox, model, answer) {
  const resultKey = typeof model.result_key === 'string' ? model.result_key : 'prediction';
  const value = answer.prediction ?? answer[resultKey];
  if (value === undefined || value === null || typeof value === 'object') {
    throw new ApiError('Unexpected answer from the API: no prediction in the response');
  }
  const classification = model.task === 'classification';
  const children = [];
  if (classification) {
    children.push(el('p', 'result-label', labelFromKey(resultKey, 'Predicted class')),
      el('p', 'result-value', String(value)));
    if (answer.probabilities && typeof answer.probabilities === 'object') {
      children.push(probabilityList(model, answer.probabilities, String(value)));
    }
  } else {
    const number = Number(value);
    children.push(el('p', 'result-label', labelFromKey(resultKey, 'Prediction')),
      el('p', 'result-value', Number.isFinite(number) ? formatNumber(number) : String(value)));
  }
  const version = answer.model_version ?? model.version;
  children.push(el('p', 'result-detail',
    [`model ${answer.model ?? model.name}`, version !== undefined && `version ${version}`].filter(Boolean).join(' · ')));
  resultBox.replaceChildren(...children);
}

function showModelFacts(model) {
  const about = document.getElementById('model-about');
  const facts = document.getElementById('model-facts');
  const rows = [];
  const add = (term, value) => {
    if (value === undefined || value === null || value === '') return;
    const text = typeof value === 'object' ? flatten(value) : String(value);
    rows.push(el('dt', null, term), el('dd', null, text));
  };
  add('Task', model.task);
  add('Version', model.version);
  if (Array.isArray(model.classes)) add('Classes', model.classes.map(String).join(', '));
  add('Metrics', model.metrics);
  add('Source', model.source);
  add('Endpoint', predictionPath(model));
  facts.replaceChildren(...rows);
  about.hidden = rows.length === 0;
}

function flatten(value) {
  if (Array.isArray(value)) return value.map(flatten).join(', ');
  if (value && typeof value === 'object') {
    return Object.entries(value).map(([key, inner]) => (inner && typeof inner === 'object'
      ? `${key}: ${flatten(inner)}`
      : `${key} ${inner}`)).join('; ');
  }
  return String(value);
}

function showMissingModel(name, models) {
  const box = document.getElementById('model-missing');
  document.getElementById('model-title').textContent = name ? 'Unknown model' : 'Choose a model';
  document.getElementById('model-description').textContent = '';
  document.getElementById('model-missing-text').textContent = name
    ? `There is no model named “${name}”. The API serves these models:`
    : 'No model was named in the address. The API serves these models:';
  const choices = document.getElementById('model-choices');
  choices.replaceChildren(...models.map((model) => {
    const link = el('a', null, model.name);
    link.href = modelPagePath(model.name);
    return el('li', null, link, typeof model.description === 'string' ? ` — ${model.description}` : null);
  }));
  if (models.length === 0) choices.append(el('li', null, 'none at the moment'));
  box.hidden = false;
  document.title = `${name ? 'Unknown model' : 'Choose a model'} · ML Prediction API`;
}

function wirePredictionForm(form, model) {
  const resultBox = document.getElementById('result');
  const errorBox = document.getElementById('error');
  const button = document.getElementById('predict');
  const preview = document.getElementById('curl-preview');
  const path = predictionPath(model);
  const updatePreview = () => { preview.textContent = curlCommand(path, readPayload(form)); };

  form.addEventListener('input', updatePreview);
  form.addEventListener('change', updatePreview);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // A number field holding text the browser cannot read as a number has an empty value;
    // say so next to it instead of sending the record without it.
    const unreadable = controlsOf(form).filter((control) => control.validity?.badInput)
      .map((control) => ({ field: control.name, problem: 'not a number' }));
    if (unreadable.length > 0) {
      errorBox.textContent = `Validation error — ${unreadable.map((p) => `${p.field}: ${p.problem}`).join('; ')}`;
      showOnly(errorBox, resultBox);
      showFieldProblems(form, unreadable)?.focus();
      return;
    }
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const answer = await callApi(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(readPayload(form)),
      });
      renderPrediction(resultBox, model, answer);
      showFieldProblems(form, []);
      showOnly(resultBox, errorBox);
    } catch (err) {
      errorBox.textContent = err instanceof ApiError ? err.message : `Unexpected error: ${err.message}`;
      showOnly(errorBox, resultBox);
      showFieldProblems(form, err.problems ?? [])?.focus();
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  updatePreview();
}

// The tutorial stack's page addresses: Nginx answers them with this page.
const TUTORIAL_PAGES = { '/classifier.html': 'decision-tree-classifier', '/regressor.html': 'decision-tree-regressor' };

async function setUpModelPage(page) {
  const params = new URLSearchParams(window.location.search);
  const name = TUTORIAL_PAGES[window.location.pathname] || params.get('name') || '';
  const form = document.getElementById('prediction-form');
  const errorBox = document.getElementById('error');
  const status = document.getElementById('model-description');
  let models;
  try {
    models = await loadModels();
  } catch (err) {
    status.textContent = 'The model could not be loaded.';
    errorBox.textContent = err.message;
    errorBox.hidden = false;
    return;
  }
  const model = models.find((candidate) => candidate.name === name);
  if (!model) {
    showMissingModel(name, models);
    return;
  }
  document.title = `${model.name} · ML Prediction API`;
  document.getElementById('model-title').textContent = model.name;
  status.textContent = typeof model.description === 'string' ? model.description : '';
  const info = document.getElementById('model-info');
  info.textContent = modelSummary(model).map((part, i) => (i === 0 ? part[0].toUpperCase() + part.slice(1) : part)).join(' · ');
  info.hidden = info.textContent === '';
  document.getElementById('model-endpoint').textContent = `POST ${predictionPath(model)}`;
  document.getElementById('model-endpoint-line').hidden = false;
  buildFields(document.getElementById('form-fields'), fieldsOf(model));
  showModelFacts(model);
  wirePredictionForm(form, model);
  form.hidden = false;
  document.getElementById('curl-details').hidden = false;
  page.dataset.ready = 'true';
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
      status.replaceChildren('Replica ', el('strong', null, replica),
        ` answered “${health.status ?? '?'}” in ${elapsed} ms.`);
      answersPerReplica.set(replica, (answersPerReplica.get(replica) ?? 0) + 1);
      tally.replaceChildren(...[...answersPerReplica].map(([name, count]) => el('li', null, `${name} × ${count}`)));
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

const modelPage = document.getElementById('model-page');
if (modelPage) setUpModelPage(modelPage);

const modelList = document.getElementById('model-list');
if (modelList) setUpModelList(modelList);

const healthButton = document.getElementById('health-check');
if (healthButton) setUpHealthWidget(healthButton);
