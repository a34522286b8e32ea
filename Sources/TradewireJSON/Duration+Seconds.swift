extension Duration {
    /// This duration in seconds, as a `Double` (for logs, metrics and rates).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
