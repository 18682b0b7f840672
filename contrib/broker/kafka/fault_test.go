package kafka_test

const crashEnv = "FERRY_KAFKA_TEST_CONSUMER"

func runConsumer(addr string) int { return 1 }
