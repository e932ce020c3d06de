/**
 * A tiny element builder. Text is only ever set as text nodes, so data from the server (player
 * names, room names, labels) can never become markup: there is no `innerHTML` in this UI.
 */

/** Something that can be a child: a node, text, or nothing (skipped). */
export type Child = Node | string | number | null | undefined | false;

/** Attributes: a string sets it, `true` sets it empty, `false`/undefined leaves it out. */
export type Attributes = Record<string, string | boolean | undefined>;

/**
 * Creates an element with attributes and children.
 *
 * @example
 * ```ts
 * h('button', { type: 'button', class: 'link', 'data-testid': 'kick-button' }, 'Remove')
 * ```
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    // Event handler attributes would be inline script (and blocked by the CSP anyway).
    if (/^on/i.test(name)) throw new Error(`Use addEventListener, not the ${name} attribute`);
    if (value === true) element.setAttribute(name, '');
    else if (typeof value === 'string') element.setAttribute(name, value);
  }
  append(element, ...children);
  return element;
}

/** Appends children (text as text nodes). */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
}

/** Replaces all children. */
export function setChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

let nextId = 0;

/** A document-unique id for label/aria wiring. */
export function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}
