// The chat platforms this build has. Their names are the keys the policy file takes for them
// (`principals.<p>.<platform>`, `channels.<platform>`, a routing entry's `<platform>:`), the
// `platform` label of the chat metrics and the origin of the requests made there.
export const CHAT_PLATFORMS = ['slack', 'teams'] as const;
