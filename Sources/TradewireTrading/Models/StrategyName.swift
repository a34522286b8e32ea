import TradewireJSON

/// The ten strategies; raw values are the wire names.
public enum StrategyName: String, Sendable, Hashable, CaseIterable, JSONEncodable {
    case trendFollowing = "TrendFollowing"
    case momentumRotation = "MomentumRotation"
    case meanReversion = "MeanReversion"
    case breakout = "Breakout"
    case volatilityBreakout = "VolatilityBreakout"
    case relativeStrength = "RelativeStrength"
    case sectorRotation = "SectorRotation"
    case dualMomentum = "DualMomentum"
    case movingAverageEnvelope = "MovingAverageEnvelope"
    case bollingerBands = "BollingerBands"

    /// The original system's legacy names and what they stand for.
    public static let legacyAliases: [String: StrategyName] = [
        "MovingAverageCrossover": .trendFollowing,
        "Momentum": .momentumRotation,
        "RSI_OversoldOverbought": .meanReversion,
        "VolumeProfile": .breakout,
        "SupportResistance": .breakout,
        "ConsolidationBreakout": .breakout,
        "BollingerBandsReversion": .bollingerBands,
    ]

    /// Accepts the ten names and the legacy aliases (`MovingAverageCrossover` →
    /// `TrendFollowing`, `Momentum` → `MomentumRotation`, `RSI_OversoldOverbought` →
    /// `MeanReversion`, `VolumeProfile`/`SupportResistance`/`ConsolidationBreakout` →
    /// `Breakout`, and the original class name `BollingerBandsReversion`), ignoring case and
    /// surrounding whitespace.
    public init?(lenient text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        if let exact = StrategyName(rawValue: trimmed) {
            self = exact
            return
        }
        let lower = trimmed.lowercased()
        if let match = StrategyName.allCases.first(where: { $0.rawValue.lowercased() == lower }) {
            self = match
            return
        }
        if let alias = Self.legacyAliases.first(where: { $0.key.lowercased() == lower }) {
            self = alias.value
            return
        }
        return nil
    }

    /// Bars the strategy needs before it can evaluate (the original's table).
    public var minimumBars: Int {
        switch self {
        case .trendFollowing: TrendFollowing.minimumBars
        case .momentumRotation: MomentumRotation.minimumBars
        case .meanReversion: MeanReversion.minimumBars
        case .breakout: Breakout.minimumBars
        case .volatilityBreakout: VolatilityBreakout.minimumBars
        case .relativeStrength: RelativeStrength.minimumBars
        case .sectorRotation: SectorRotation.minimumBars
        case .dualMomentum: DualMomentum.minimumBars
        case .movingAverageEnvelope: MovingAverageEnvelope.minimumBars
        case .bollingerBands: BollingerBands.minimumBars
        }
    }

    /// The strategy with its default parameters.
    public func makeStrategy() -> any Strategy {
        switch self {
        case .trendFollowing: TrendFollowing()
        case .momentumRotation: MomentumRotation()
        case .meanReversion: MeanReversion()
        case .breakout: Breakout()
        case .volatilityBreakout: VolatilityBreakout()
        case .relativeStrength: RelativeStrength()
        case .sectorRotation: SectorRotation()
        case .dualMomentum: DualMomentum()
        case .movingAverageEnvelope: MovingAverageEnvelope()
        case .bollingerBands: BollingerBands()
        }
    }

    /// Evaluates the strategy (default parameters) on a prepared series, without boxing.
    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        switch self {
        case .trendFollowing: try TrendFollowing().evaluate(series)
        case .momentumRotation: try MomentumRotation().evaluate(series)
        case .meanReversion: try MeanReversion().evaluate(series)
        case .breakout: try Breakout().evaluate(series)
        case .volatilityBreakout: try VolatilityBreakout().evaluate(series)
        case .relativeStrength: try RelativeStrength().evaluate(series)
        case .sectorRotation: try SectorRotation().evaluate(series)
        case .dualMomentum: try DualMomentum().evaluate(series)
        case .movingAverageEnvelope: try MovingAverageEnvelope().evaluate(series)
        case .bollingerBands: try BollingerBands().evaluate(series)
        }
    }

    public func encodeJSON(to writer: inout JSONWriter) { writer.write(rawValue) }
}
