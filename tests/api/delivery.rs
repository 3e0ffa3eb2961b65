//! Daily delivery (filled in with the delivery issue).
