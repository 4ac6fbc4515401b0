/** Single-key shortcuts must never fire while the agent is typing in a field. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

/** Every shortcut, as the help dialog lists them. */
export const SHORTCUTS: [keys: string, action: string][] = [
  ['?', 'Show these shortcuts'],
  ['/', 'Search the inbox'],
  ['j / k', 'Next / previous conversation in the list'],
  ['t', 'Take the open conversation'],
  ['r', 'Write a reply'],
  ['n', 'Write an internal note'],
  ['x', 'Transfer the open conversation'],
  ['e', 'End the open conversation'],
  ['Enter', 'Send (in the composer)'],
  ['Shift + Enter', 'New line (in the composer)'],
  ['/ at the start of a message', 'Insert a canned response'],
  ['Escape', 'Close a dialog'],
];
