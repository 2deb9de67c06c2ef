// The playground's island: wires the controls of Playground.astro to the engine and re-renders
// the picture and the tables (the same render functions the page used at build time).
import { addOrder, editEvent, parseField, removeEvent } from '../../lib/playground/edit.ts';
import type { EditableField } from '../../lib/playground/edit.ts';
import { DAY_US } from '../../lib/playground/engine.ts';
import type { ChangeEvent, Simulation } from '../../lib/playground/engine.ts';
import {
  GUARD_TOLERANCE_US,
  customersOf,
  formatTime,
  initialState,
  renderEvents,
  renderGuardComparison,
  renderPicture,
  renderStatus,
  renderTables,
  run,
  sliderRange,
} from '../../lib/playground/view.ts';
import type { Preset, ViewState } from '../../lib/playground/view.ts';

const PLAY_INTERVAL_MS = 1200;

export function hydrate(root: HTMLElement): void {
  const el = <T extends HTMLElement>(id: string): T => {
    const found = root.querySelector<T>(`#${id}`);
    if (!found) throw new Error(`playground: #${id} is missing`);
    return found;
  };
  const { presets } = JSON.parse(el('pg-data').textContent ?? '{}') as { presets: Preset[] };
  const controls = el<HTMLFieldSetElement>('pg-controls-set');
  const presetSelect = el<HTMLSelectElement>('pg-preset');
  const stepButton = el<HTMLButtonElement>('pg-step');
  const playButton = el<HTMLButtonElement>('pg-play');
  const resetButton = el<HTMLButtonElement>('pg-reset');
  const batchInput = el<HTMLInputElement>('pg-batch');
  const delayInput = el<HTMLInputElement>('pg-delay');
  const guardInput = el<HTMLInputElement>('pg-guard');
  const tInput = el<HTMLInputElement>('pg-t');
  const tOut = el<HTMLOutputElement>('pg-t-out');
  const customerSelect = el<HTMLSelectElement>('pg-customer');
  const addButton = el<HTMLButtonElement>('pg-add');
  const picture = el('pg-picture');
  const status = el('pg-status');
  const compare = el('pg-compare');
  const error = el('pg-error');
  const tables = el('pg-tables');
  const events = el('pg-events');

  let preset = presets[0];
  let state: ViewState = initialState(preset);
  let sim: Simulation = run(state);
  state.step = sim.batches.length;
  let timer: ReturnType<typeof setInterval> | null = null;

  const timeOfDay = (): number => (((preset.readAt[0] ?? 0) % DAY_US) + DAY_US) % DAY_US;

  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
    playButton.setAttribute('aria-pressed', 'false');
    playButton.textContent = 'Пуск';
  }

  function syncControls(): void {
    stepButton.disabled = state.step >= sim.batches.length;
    batchInput.value = String(state.batchSize);
    delayInput.value = String(state.semantics.watermarkDelayDays);
    guardInput.checked = state.semantics.guardToleranceUs !== null;
    const range = sliderRange(state);
    tInput.min = String(range.min);
    tInput.max = String(range.max);
    tInput.value = String(range.value);
    tOut.textContent = `${formatTime(state.at)} UTC`;
    const customers = customersOf(state.log);
    if (!customers.includes(state.customer)) state.customer = customers[0] ?? 0;
    if (customerSelect.dataset.list !== customers.join(',')) {
      customerSelect.innerHTML = customers.map((c) => `<option value="${c}">${c}</option>`).join('');
      customerSelect.dataset.list = customers.join(',');
    }
    customerSelect.value = String(state.customer);
  }

  /** Re-render everything; keep the focus on the same editor of the event list. */
  function render(): void {
    const active = document.activeElement;
    const key = active instanceof HTMLElement && events.contains(active) ? `${active.dataset.field ?? 'del'}|${active.dataset.index}` : null;
    state.step = Math.min(state.step, sim.batches.length);
    syncControls();
    picture.innerHTML = renderPicture(state, sim);
    status.textContent = renderStatus(state, sim);
    compare.innerHTML = renderGuardComparison(state);
    tables.innerHTML = renderTables(state, sim);
    events.innerHTML = renderEvents(state, sim);
    if (key) {
      const [field, index] = key.split('|');
      const selector = field === 'del' ? `.pg-del[data-index="${index}"]` : `[data-field="${field}"][data-index="${index}"]`;
      (events.querySelector<HTMLElement>(selector) ?? events).focus();
    }
  }

  function change(next: Partial<ViewState>, keepStep = true): void {
    const step = state.step;
    state = { ...state, ...next };
    sim = run(state);
    state.step = keepStep ? Math.min(step, sim.batches.length) : sim.batches.length;
    error.textContent = '';
    render();
  }

  presetSelect.addEventListener('change', () => {
    stop();
    preset = presets.find((p) => p.name === presetSelect.value) ?? presets[0];
    state = initialState(preset);
    sim = run(state);
    state.step = sim.batches.length;
    error.textContent = '';
    render();
  });
  stepButton.addEventListener('click', () => {
    if (state.step < sim.batches.length) {
      state.step++;
      render();
    }
  });
  resetButton.addEventListener('click', () => {
    stop();
    state.step = 0;
    render();
  });
  playButton.addEventListener('click', () => {
    if (timer !== null) return stop();
    if (state.step >= sim.batches.length) state.step = 0;
    playButton.setAttribute('aria-pressed', 'true');
    playButton.textContent = 'Пауза';
    render();
    timer = setInterval(() => {
      if (state.step >= sim.batches.length) return stop();
      state.step++;
      render();
    }, PLAY_INTERVAL_MS);
  });
  batchInput.addEventListener('change', () => {
    const n = Number(batchInput.value);
    if (!Number.isInteger(n) || n < 1 || n > 50) {
      error.textContent = 'Событий в батче — целое число от 1 до 50';
      batchInput.value = String(state.batchSize);
      return;
    }
    change({ batchSize: n });
  });
  delayInput.addEventListener('change', () => {
    const n = Number(delayInput.value);
    if (!Number.isInteger(n) || n < 0 || n > 400) {
      error.textContent = 'Задержка — целое число дней от 0 до 400';
      delayInput.value = String(state.semantics.watermarkDelayDays);
      return;
    }
    change({ semantics: { ...state.semantics, watermarkDelayDays: n } });
  });
  guardInput.addEventListener('change', () => {
    change({ semantics: { ...state.semantics, guardToleranceUs: guardInput.checked ? GUARD_TOLERANCE_US : null } });
  });
  tInput.addEventListener('input', () => {
    change({ at: Number(tInput.value) * DAY_US + timeOfDay() });
  });
  customerSelect.addEventListener('change', () => {
    state.customer = Number(customerSelect.value);
    render();
  });
  addButton.addEventListener('click', () => {
    change({ log: addOrder(state.log, { customer: state.customer }) });
  });
  events.addEventListener('change', (event) => {
    const target = event.target;
    if (!(target instanceof HTMLInputElement || target instanceof HTMLSelectElement) || !target.dataset.field) return;
    const index = Number(target.dataset.index);
    const field = target.dataset.field as EditableField;
    let log: ChangeEvent[];
    try {
      log = editEvent(state.log, index, field, parseField(field, target.value));
    } catch (e) {
      error.textContent = `Событие ${index + 1}: ${(e as Error).message}`;
      return;
    }
    // Re-render after the focus has moved on (Tab), so it can be put back on the same editor.
    setTimeout(() => change({ log }), 0);
  });
  events.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest<HTMLButtonElement>('.pg-del') : null;
    if (!target) return;
    change({ log: removeEvent(state.log, Number(target.dataset.index)) });
  });

  controls.disabled = false;
  addButton.disabled = false;
  root.dataset.ready = 'true';
}
