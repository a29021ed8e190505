import { clusterNodes } from '../support/redis.ts';
import { describeJobEventsStore } from '../integration/job-events-store.suite.ts';

describeJobEventsStore('cluster', () => ({ clusterNodes: clusterNodes() }));
