import { EmbeddedBackend, KafkaBackend } from './backends';
import { describeLogConformance } from './log-conformance';

// One suite, every backend: the embedded file log, and Kafka (librdkafka's
// mock cluster, or a real cluster when KAFKA_BROKERS is set).
describeLogConformance(new EmbeddedBackend());
describeLogConformance(new KafkaBackend());
