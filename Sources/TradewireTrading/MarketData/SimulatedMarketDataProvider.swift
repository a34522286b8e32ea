import Foundation

/// Seeded synthetic daily bars: geometric Brownian motion with regime changes, deterministic
/// in (symbol, seed, trading day).
///
/// The model, per symbol (parameters drawn from a hash of the symbol and the seed, so every
/// symbol has its own price level, daily volatility 0.6–2.5 %, volume and long-run trend):
/// - Time is cut into blocks of 64 trading days (weekdays, no holidays). The log price at
///   each block boundary is the symbol's base level, plus a moving sum of hashed noise (a
///   stationary random walk), plus a slow sine of per-symbol amplitude, period and phase: the
///   long-run up- and down-trends.
/// - Each block has its own volatility regime (calm, normal or turbulent) and runs from one
///   boundary to the next as a Brownian bridge, with occasional 3–6 σ jumps.
/// - Open = previous close × a small gap; high/low extend beyond open/close by a
///   volatility-scaled amount; volume is the symbol's base volume, noisy and larger on big
///   moves (always a positive integer).
///
/// Because each block depends only on (symbol, seed, block), a bar's values do not depend on
/// the window requested: windows ending on consecutive days overlap exactly.
public struct SimulatedMarketDataProvider: MarketDataProvider {
    public let seed: UInt64
    public var name: String { "simulated" }

    /// Trading days per regime block.
    static let blockLength: Int64 = 64
    /// Noise terms summed into each boundary level.
    static let levelTerms: Int64 = 8

    public init(seed: UInt64) { self.seed = seed }

    public func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        MarketData(symbol: symbol, timeframe: "1Day", bars: self.bars(for: symbol, count: bars, asOf: asOf))
    }

    /// `count` daily bars on weekdays, oldest first, the last one on the UTC day of `asOf`
    /// (or the Friday before it on a weekend). Synchronous and allocation-light.
    public func bars(for symbol: String, count: Int, asOf: Date) -> [Bar] {
        guard count > 0 else { return [] }
        let profile = Profile(symbol: symbol, seed: seed)
        let L = Self.blockLength
        let endT = TradingCalendar.tradingIndex(ofDay: TradingCalendar.utcDay(asOf))
        let firstT = endT - Int64(count)  // one extra bar before the window, for the first open
        let span = count + 1

        var logClose = [Double](repeating: 0, count: span)
        var sigma = [Double](repeating: 0, count: span)
        var gapNoise = [Double](repeating: 0, count: span)
        var highNoise = [Double](repeating: 0, count: span)
        var lowNoise = [Double](repeating: 0, count: span)
        var volumeNoise = [Double](repeating: 0, count: span)
        var walk = [Double](repeating: 0, count: Int(L) + 1)
        var draws = [(Double, Double, Double, Double)](repeating: (0, 0, 0, 0), count: Int(L))

        var block = TradingCalendar.floorDiv(firstT, L)
        let lastBlock = TradingCalendar.floorDiv(endT, L)
        var startLevel = profile.level(atBoundary: block)
        while block <= lastBlock {
            let endLevel = profile.level(atBoundary: block + 1)
            var rng = Xoshiro256StarStar(seed: SplitMix64.combine(profile.key, UInt64(bitPattern: block), 2))
            let u = rng.uniform()
            let regime =
                u < 0.15
                ? 1.8 + 0.7 * rng.uniform() : (u < 0.55 ? 0.9 + 0.3 * rng.uniform() : 0.5 + 0.3 * rng.uniform())
            let s = profile.sigma * regime
            walk[0] = 0
            for k in 0..<Int(L) {
                var step = s * rng.normal()
                let jump = rng.uniform()
                if jump < 0.012 {
                    step += (rng.uniform() < 0.5 ? -1 : 1) * s * (3 + 3 * rng.uniform())
                }
                walk[k + 1] = walk[k] + step
                draws[k] = (rng.triangular(), rng.triangular(), rng.triangular(), rng.triangular())
            }
            let blockStart = block * L
            let lo = max(firstT, blockStart)
            let hi = min(endT, blockStart + L - 1)
            if lo <= hi {
                let total = walk[Int(L)]
                let rise = endLevel - startLevel
                for t in lo...hi {
                    let k = Int(t - blockStart)
                    let f = Double(k) / Double(L)
                    let i = Int(t - firstT)
                    logClose[i] = startLevel + walk[k] - f * total + f * rise
                    sigma[i] = s
                    (gapNoise[i], highNoise[i], lowNoise[i], volumeNoise[i]) = draws[k]
                }
            }
            startLevel = endLevel
            block += 1
        }

        var result: [Bar] = []
        result.reserveCapacity(count)
        var previousClose = exp(logClose[0])
        for i in 1..<span {
            let s = sigma[i]
            let close = exp(logClose[i])
            let open = previousClose * (1 + 0.6 * s * gapNoise[i])
            let high = max(open, close) * (1 + 1.2 * s * abs(highNoise[i]))
            let low = min(open, close) * max(0.5, 1 - 1.2 * s * abs(lowNoise[i]))
            let move = abs(close / previousClose - 1) / max(s, 1e-9)
            let volume = (profile.baseVolume * (1 + 0.8 * volumeNoise[i]) * (1 + 0.3 * min(move, 6))).rounded()
            let day = TradingCalendar.day(ofTradingIndex: firstT + Int64(i))
            result.append(
                Bar(
                    timestamp: TradingCalendar.date(ofDay: day), open: Self.cents(open), high: Self.cents(high),
                    low: Self.cents(low), close: Self.cents(close), volume: max(1, volume)))
            previousClose = close
        }
        return result
    }

    /// Rounds a price to 1/10 000 (prices look like quotes and stay exact in ``Money``);
    /// rounding preserves the ordering of high ≥ open/close ≥ low.
    @inline(__always)
    static func cents(_ price: Double) -> Double { (price * 10_000).rounded() / 10_000 }

    /// A symbol's fixed parameters.
    struct Profile {
        let key: UInt64
        let logBase: Double
        let sigma: Double
        let baseVolume: Double
        let noiseScale: Double
        let trendAmplitude: Double
        let trendPeriod: Double
        let trendPhase: Double

        init(symbol: String, seed: UInt64) {
            key = SplitMix64.combine(stableHash(symbol), seed, 1)
            var rng = Xoshiro256StarStar(seed: key)
            logBase = log(10) + rng.uniform() * (log(500) - log(10))
            sigma = 0.006 + 0.019 * rng.uniform()
            baseVolume = exp(log(2e5) + rng.uniform() * (log(2e7) - log(2e5)))
            noiseScale = 0.05 + 0.05 * rng.uniform()
            trendAmplitude = 0.05 + 0.30 * rng.uniform()
            trendPeriod = 8 + 16 * rng.uniform()
            trendPhase = 2 * Double.pi * rng.uniform()
        }

        /// Log price at the start of a block.
        func level(atBoundary block: Int64) -> Double {
            var noise = 0.0
            for j in 0..<SimulatedMarketDataProvider.levelTerms {
                var rng = Xoshiro256StarStar(seed: SplitMix64.combine(key, UInt64(bitPattern: block - j), 3))
                noise += rng.normal()
            }
            let trend = trendAmplitude * sin(2 * Double.pi * Double(block) / trendPeriod + trendPhase)
            return logBase + noiseScale * noise + trend
        }
    }
}
