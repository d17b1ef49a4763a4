// The verbs of card buttons (Adaptive Card `Action.Execute`), shared by the Teams adapter, the
// console and the card renderer. Kept apart from the renderer so that routing a click does not
// load the templating library.
export const VERBS = {
  approve: 'approve',
  deny: 'deny',
  extApprove: 'ext_approve',
  extDeny: 'ext_deny',
  revoke: 'revoke',
  extend: 'extend',
  refresh: 'refresh',
} as const;
