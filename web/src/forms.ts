/**
 * Accessible form building blocks: labelled fields with their own error text (wired through
 * `aria-describedby` and `aria-invalid`), a `role="alert"` summary, and a busy state that stops
 * double submits.
 */
import { h, setChildren, uniqueId } from './dom.js';
import { fieldErrorText, type Problem, problemMessage } from './problem.js';

/** What a field looks like. */
export interface FieldSpec {
  /** Input name; also the API field its errors are reported under. */
  name: string;
  label: string;
  type?: 'text' | 'email' | 'password';
  autocomplete?: string;
  required?: boolean;
  /** Shown under the label, always. */
  hint?: string;
  testId?: string;
  value?: string;
  maxLength?: number;
  minLength?: number;
  placeholder?: string;
  /** `autocapitalize`, e.g. `characters` for room codes, `off` for dice notation. */
  autocapitalize?: string;
  spellcheck?: boolean;
}

/** A rendered field. */
export interface Field {
  /** The wrapper to insert into a form. */
  element: HTMLElement;
  input: HTMLInputElement;
  label: string;
  /** Shows an error under the input and marks it invalid. */
  showError(message: string): void;
  clearError(): void;
}

/** Builds a labelled input with a hint and an error slot. */
export function buildField(spec: FieldSpec): Field {
  const inputId = uniqueId(`field-${spec.name}`);
  const hintId = `${inputId}-hint`;
  const errorId = `${inputId}-error`;
  const input = h('input', {
    id: inputId,
    name: spec.name,
    type: spec.type ?? 'text',
    autocomplete: spec.autocomplete,
    required: spec.required === true,
    placeholder: spec.placeholder,
    autocapitalize: spec.autocapitalize,
    spellcheck: spec.spellcheck === undefined ? undefined : String(spec.spellcheck),
    maxlength: spec.maxLength === undefined ? undefined : String(spec.maxLength),
    minlength: spec.minLength === undefined ? undefined : String(spec.minLength),
    'data-testid': spec.testId,
  });
  if (spec.value !== undefined) input.value = spec.value;
  const hint = spec.hint === undefined ? null : h('p', { id: hintId, class: 'field-hint' }, spec.hint);
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const describe = (withError: boolean) => {
    const ids = [hint === null ? '' : hintId, withError ? errorId : ''].filter((id) => id !== '').join(' ');
    if (ids === '') input.removeAttribute('aria-describedby');
    else input.setAttribute('aria-describedby', ids);
  };
  describe(false);
  const element = h(
    'div',
    { class: 'field' },
    h(
      'label',
      { for: inputId },
      spec.label,
      spec.required === true ? null : h('span', { class: 'optional' }, ' (optional)'),
    ),
    hint,
    input,
    error,
  );
  const field: Field = {
    element,
    input,
    label: spec.label,
    showError(message) {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      describe(true);
    },
    clearError() {
      error.textContent = '';
      error.hidden = true;
      input.removeAttribute('aria-invalid');
      describe(false);
    },
  };
  input.addEventListener('input', () => field.clearError());
  return field;
}

/** An inline error summary, announced when shown (`role="alert"`). */
export interface Alert {
  element: HTMLElement;
  show(...content: (Node | string)[]): void;
  clear(): void;
}

/** Builds an {@link Alert}; empty and hidden until shown. */
export function buildAlert(testId: string): Alert {
  const element = h('div', { class: 'alert', role: 'alert', 'data-testid': testId, hidden: true });
  return {
    element,
    show(...content) {
      setChildren(element, ...content);
      element.hidden = false;
    },
    clear() {
      element.replaceChildren();
      element.hidden = true;
    },
  };
}

/**
 * Shows a problem: the `detail` (with any wait time) in the alert, each `errors[]` entry under its
 * field when the form has one (unknown fields stay in the alert), and `fieldForCode` lets a code
 * without `errors[]` (e.g. `EMAIL_TAKEN`) point at its field. Focuses the first invalid field.
 */
export function showProblem(
  problem: Problem,
  fields: readonly Field[],
  alert: Alert,
  fieldForCode: Record<string, string> = {},
): void {
  for (const field of fields) field.clearError();
  const byName = new Map(fields.map((field) => [field.input.name, field]));
  const unmatched: string[] = [];
  const marked: Field[] = [];
  for (const error of problem.errors) {
    const field = byName.get(error.field) ?? byName.get(error.field.split(/[./]/).pop() ?? '');
    if (field === undefined) unmatched.push(`${error.field}: ${error.message}`);
    else {
      field.showError(fieldErrorText(field.label, error.message));
      marked.push(field);
    }
  }
  const codeField = fieldForCode[problem.code];
  if (marked.length === 0 && codeField !== undefined) {
    const field = byName.get(codeField);
    if (field !== undefined) {
      field.showError(problemMessage(problem));
      marked.push(field);
    }
  }
  const lines = [problemMessage(problem), ...unmatched];
  alert.show(...lines.flatMap((line, i) => (i === 0 ? [line] : [h('br'), line])));
  marked[0]?.input.focus();
}

/** Disables a form's controls while a request runs and shows progress on its submit button. */
export function setBusy(
  form: HTMLFormElement,
  button: HTMLButtonElement,
  busy: boolean,
  busyLabel: string,
): void {
  if (busy) {
    button.dataset.idleLabel = button.textContent ?? '';
    button.textContent = busyLabel;
  } else if (button.dataset.idleLabel !== undefined) {
    button.textContent = button.dataset.idleLabel;
    delete button.dataset.idleLabel;
  }
  form.setAttribute('aria-busy', String(busy));
  for (const control of Array.from(form.elements)) {
    if (control instanceof HTMLButtonElement || control instanceof HTMLInputElement) control.disabled = busy;
  }
}

/** Flags empty required fields; true when all are filled. */
export function checkRequired(fields: readonly Field[], alert: Alert): boolean {
  for (const field of fields) field.clearError();
  const empty = fields.filter((field) => field.input.value.trim() === '');
  for (const field of empty) field.showError(`${field.label} is required.`);
  if (empty.length === 0) return true;
  alert.show(
    empty.length === 1 ? 'Please fill in the highlighted field.' : 'Please fill in the highlighted fields.',
  );
  empty[0]?.input.focus();
  return false;
}
