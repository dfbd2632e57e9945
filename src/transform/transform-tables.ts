/** The SQL table names of a stream's clean and quarantined records (src/batch/clean-tables.ts builds them). */
export const cleanTableName = (stream: string): string => `${stream}__clean`;
export const quarantineTableName = (stream: string): string => `${stream}__quarantine`;
