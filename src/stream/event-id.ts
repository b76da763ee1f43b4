/** Event ids are the decimal sequence numbers of the event log (shared through Redis across instances). */
export const isEventId = (value: string): boolean => /^\d{1,15}$/.test(value);
