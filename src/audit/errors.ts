import { PortcullisError } from '../errors.ts';

/** Audit log errors: integrity and format failures, with a stable code. */
export class AuditError extends PortcullisError {}
