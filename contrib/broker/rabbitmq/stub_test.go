package rabbitmq

const crashEnv = "FERRY_RABBITMQ_TEST_CONSUMER"

func runConsumer(url string) int { return 1 }
