/** Admin console: the clothes catalogue (filter by size and colour, add, delete). */
import { signal } from '@preact/signals-core';
import type * as AccountApi from '../account-api.js';
import type { Clothing, Page } from '../account-api.js';
import { h, setChildren, uniqueId } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import { COLORS, type Color, SIZES, type Size } from '../shared.js';
import { watch } from './watch.js';

/** The calls this component makes. */
export type AdminClothesActions = Pick<
  typeof AccountApi,
  'listClothes' | 'createClothing' | 'deleteClothing'
>;

const PAGE_SIZE = 100;

/** A labelled `<select>` of `options` (with "any" first when `any` is given). */
function choice<T extends string>(
  label: string,
  name: string,
  options: readonly T[],
  testId: string,
  any?: string,
) {
  const id = uniqueId(`select-${name}`);
  const select = h('select', { id, name, 'data-testid': testId });
  if (any !== undefined) select.append(h('option', { value: '' }, any));
  for (const option of options) select.append(h('option', { value: option }, option));
  return { select, element: h('div', { class: 'field' }, h('label', { for: id }, label), select) };
}

/** The clothes section. */
export function adminClothes(actions: AdminClothesActions, until: AbortSignal): HTMLElement {
  const page = signal<Page<Clothing> | null>(null);
  const alert = buildAlert('admin-clothes-error');
  const sizeFilter = choice('Size', 'size', SIZES, 'clothes-size-filter', 'any size');
  const colorFilter = choice('Colour', 'color', COLORS, 'clothes-color-filter', 'any colour');
  const list = h('div', { 'data-testid': 'clothes-list' });

  const load = async () => {
    const result = await actions.listClothes({
      size: sizeFilter.select.value,
      color: colorFilter.select.value,
      limit: PAGE_SIZE,
    });
    if (until.aborted) return;
    if (result.ok) page.value = result.data;
    else showProblem(result.problem, [], alert);
  };
  sizeFilter.select.addEventListener('change', () => void load());
  colorFilter.select.addEventListener('change', () => void load());

  watch(until, () => {
    const current = page.value;
    if (current === null) {
      setChildren(list, h('p', { role: 'status' }, 'Loading…'));
      return;
    }
    if (current.items.length === 0) {
      setChildren(list, h('p', {}, 'Nothing in the catalogue matches.'));
      return;
    }
    setChildren(
      list,
      h(
        'ul',
        { class: 'plain-list' },
        ...current.items.map((item) => {
          const remove = h(
            'button',
            { type: 'button', class: 'button button--link', 'data-testid': 'clothing-delete' },
            'Delete',
          );
          remove.addEventListener('click', () => {
            remove.disabled = true;
            alert.clear();
            void actions.deleteClothing(item.id).then((result) => {
              if (until.aborted) return;
              if (result.ok || result.problem.status === 404) void load();
              else {
                remove.disabled = false;
                showProblem(result.problem, [], alert);
              }
            });
          });
          return h(
            'li',
            { 'data-testid': 'clothing-item' },
            // The server stores only http(s) URLs; checked again so no other scheme becomes a link.
            /^https?:\/\//i.test(item.photo_url)
              ? h('a', { href: item.photo_url, rel: 'noopener noreferrer', target: '_blank' }, item.name)
              : item.name,
            ` · ${item.size} · ${item.color} `,
            remove,
          );
        }),
      ),
      current.total > current.items.length
        ? h(
            'p',
            { class: 'muted' },
            `Showing ${current.items.length} of ${current.total}; filter to see the rest.`,
          )
        : null,
    );
  });

  const name = buildField({
    name: 'name',
    label: 'Name',
    required: true,
    maxLength: 200,
    testId: 'clothing-name-input',
  });
  const photo = buildField({
    name: 'photo_url',
    label: 'Photo URL',
    required: true,
    placeholder: 'https://…',
    testId: 'clothing-photo-input',
  });
  const size = choice('Size', 'size', SIZES, 'clothing-size-input');
  const color = choice('Colour', 'color', COLORS, 'clothing-color-input');
  const add = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'clothing-add' },
    'Add',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'clothing-form' },
    name.element,
    photo.element,
    size.element,
    color.element,
    add,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([name, photo], alert)) return;
    setBusy(form, add, true, 'Adding…');
    void actions
      .createClothing({
        name: name.input.value.trim(),
        photo_url: photo.input.value.trim(),
        size: size.select.value as Size,
        color: color.select.value as Color,
      })
      .then((result) => {
        if (until.aborted) return;
        setBusy(form, add, false, '');
        if (!result.ok) {
          showProblem(result.problem, [name, photo], alert);
          return;
        }
        name.input.value = '';
        photo.input.value = '';
        void load();
      });
  });
  void load();
  return h(
    'section',
    { 'data-testid': 'admin-clothes' },
    alert.element,
    h('div', { class: 'filters' }, sizeFilter.element, colorFilter.element),
    list,
    h('h2', {}, 'Add a garment'),
    form,
  );
}
