/** The selector's door to job records is the job-shard store (shared/store/job-shard.ts). */
export { JobShardStore as JobStore, type JobSession, type JobSummary } from '../../shared/store/job-shard.ts';
