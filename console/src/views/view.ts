/** A page of the console: built once, refreshed by the poll (only its live parts are replaced). */
export interface View {
  el: HTMLElement;
  refresh(): Promise<void>;
}

/** Replaces the children of `slot` with `content` (null and false are skipped). */
export function fill(slot: HTMLElement, ...content: (Node | string | null | false)[]): void {
  slot.replaceChildren(...content.filter((c): c is Node | string => c !== null && c !== false));
}
