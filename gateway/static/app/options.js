// The per-job options of the upload form, built from the gateway's own OpenAPI description of `POST /jobs`:
// a field the API gains appears here by itself. LABELS gives a field a name and a place (one line each).

const LABELS = {
  language: { label: "Language", main: true, empty: "detect it" },
  task: { label: "Task", main: true },
  model: { label: "Model" },
  webhook_url: { label: "Webhook URL" },
};
const NOT_OPTIONS = new Set(["audio", "audio_url"]);
const FALLBACK = {
  language: { type: "string", description: "ISO 639-1 code; empty = detect" },
  task: { type: "string", enum: ["transcribe", "translate"], default: "transcribe" },
};

const languageNames = (() => {
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
  } catch {
    return null;
  }
})();

function humanize(name) {
  return name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function optionLabel(field, value, spec) {
  if (value === "") return spec.empty || "(default)";
  if (field === "language" && languageNames) {
    const name = languageNames.of(value);
    if (name && name !== value) return `${name} (${value})`;
  }
  return value;
}

function control(name, schema, spec) {
  let input;
  if (Array.isArray(schema.enum)) {
    input = document.createElement("select");
    // The empty choice ("the service's default") first, the others by their label.
    const values = schema.enum.filter((value) => value !== "");
    values.sort((a, b) => optionLabel(name, a, spec).localeCompare(optionLabel(name, b, spec)));
    if (schema.enum.includes("")) values.unshift("");
    for (const value of values) input.append(new Option(optionLabel(name, value, spec), value));
  } else if (schema.type === "boolean") {
    input = Object.assign(document.createElement("input"), { type: "checkbox" });
  } else if (schema.type === "integer" || schema.type === "number") {
    input = Object.assign(document.createElement("input"), { type: "number", step: schema.type === "integer" ? 1 : "any" });
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
  } else {
    input = Object.assign(document.createElement("input"), { type: schema.format === "uri" ? "url" : "text" });
    if (schema.maxLength) input.maxLength = schema.maxLength;
  }
  input.name = name;
  input.id = `option-${name}`;
  if (schema.default !== undefined) {
    if (input.type === "checkbox") input.checked = Boolean(schema.default);
    else input.value = String(schema.default);
  }
  return input;
}

// Render the options into `container`; returns a function that adds the chosen values to a FormData.
export async function buildOptions(container) {
  let properties = FALLBACK;
  try {
    const response = await fetch("/openapi.json");
    const spec = await response.json();
    properties = spec.paths["/jobs"].post.requestBody.content["multipart/form-data"].schema.properties;
  } catch {
    // An older gateway or a proxy in the way: the two options every jetscribe takes.
  }
  const more = Object.assign(document.createElement("details"), { className: "more" });
  more.append(Object.assign(document.createElement("summary"), { textContent: "More options" }));
  const inputs = [];
  for (const [name, schema] of Object.entries(properties)) {
    if (NOT_OPTIONS.has(name)) continue;
    const spec = LABELS[name] || {};
    const input = control(name, schema, spec);
    const label = Object.assign(document.createElement("label"), { htmlFor: input.id, className: "field" });
    label.append(Object.assign(document.createElement("span"), { textContent: spec.label || humanize(name) }), input);
    if (schema.description) label.title = schema.description;
    (spec.main ? container : more).append(label);
    inputs.push(input);
  }
  if (more.children.length > 1) container.append(more);
  return (form) => {
    for (const input of inputs) {
      if (input.type === "checkbox") form.append(input.name, input.checked ? "true" : "false");
      else if (input.value !== "") form.append(input.name, input.value);
    }
  };
}
