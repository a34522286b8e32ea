/// The columns of a bar list, extracted once so indicators and strategies work on
/// contiguous `[Double]` arrays (oldest first).
public struct PriceSeries: Sendable, Equatable {
    public let opens: [Double]
    public let highs: [Double]
    public let lows: [Double]
    public let closes: [Double]
    public let volumes: [Double]

    public init(bars: [Bar]) {
        var opens: [Double] = []
        var highs: [Double] = []
        var lows: [Double] = []
        var closes: [Double] = []
        var volumes: [Double] = []
        opens.reserveCapacity(bars.count)
        highs.reserveCapacity(bars.count)
        lows.reserveCapacity(bars.count)
        closes.reserveCapacity(bars.count)
        volumes.reserveCapacity(bars.count)
        for bar in bars {
            opens.append(bar.open)
            highs.append(bar.high)
            lows.append(bar.low)
            closes.append(bar.close)
            volumes.append(bar.volume)
        }
        self.init(opens: opens, highs: highs, lows: lows, closes: closes, volumes: volumes)
    }

    /// All arrays must have the same length.
    public init(opens: [Double], highs: [Double], lows: [Double], closes: [Double], volumes: [Double]) {
        precondition(
            opens.count == closes.count && highs.count == closes.count && lows.count == closes.count
                && volumes.count == closes.count, "PriceSeries columns must have equal lengths")
        self.opens = opens
        self.highs = highs
        self.lows = lows
        self.closes = closes
        self.volumes = volumes
    }

    /// Number of bars.
    public var count: Int { closes.count }
}
