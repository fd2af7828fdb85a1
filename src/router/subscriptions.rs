//! The subscription trie: filter -> subscribers, with shared subscriptions.
