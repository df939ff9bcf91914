"""One ``ComponentResource`` per concern of the stack; each module owns one of them."""
