# Convenience aliases for ./run (which needs nothing but bash).
.PHONY: demo test
demo:
	./run demo
test:
	./run test
