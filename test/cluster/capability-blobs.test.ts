import { clusterNodes } from '../support/redis.ts';
import { describeCapabilityBlobs } from '../integration/capability-blobs.suite.ts';

describeCapabilityBlobs('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
