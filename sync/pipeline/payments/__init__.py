"""Cash application: a payment is carried, once, from the system it arrived in to the other."""
