import { clusterNodes } from '../support/redis.ts';
import { describeJobWaits } from '../integration/job-waits.suite.ts';

describeJobWaits('cluster', () => ({ clusterNodes: clusterNodes() }));
