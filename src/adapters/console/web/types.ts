// Types shared by the console page's modules.
export interface ExecuteAction {
  verb?: string;
  data?: unknown;
}
/** The parts of the renderer's Input used here (value reads the rendered control). */
export interface CardInput {
  id?: string;
  readonly value?: string;
  defaultValue?: string;
  readonly renderedInputControlElement?: HTMLElement;
}
export interface RenderedCard {
  hostConfig: unknown;
  parse(json: unknown): void;
  render(): HTMLElement | undefined;
  getAllInputs(): CardInput[];
  onExecuteAction: (action: ExecuteAction) => void;
}
export type Card = Record<string, unknown>;
export type ActionResult = { kind: 'card'; card: Card; form?: Card; note?: string; created?: { request?: { id: string } } } | { kind: 'message'; text: string };

export interface CardView {
  holder: HTMLElement;
  bar: HTMLElement;
  body: HTMLElement;
  connect: HTMLElement;
  json: string;
  card?: RenderedCard;
  requestId?: string;
  /** An approval card in the chat: redrawn (refresh verb) when its request changes. */
  scope?: string;
  seenVersion?: number;
  /** Connection commands the card shows itself (they get copy buttons in place). */
  ownCommands: string[];
}

