import Testing

@testable import TradewireTrading

@Suite struct ValidationTests {
    @Test(arguments: [
        (" aapl ", "AAPL"), ("BRK.B", "BRK.B"), ("spy", "SPY"), ("A", "A"), ("ABCDEFGHIJ", "ABCDEFGHIJ"),
        ("x-1", "X-1"),
    ])
    func validSymbols(raw: String, normalized: String) throws {
        #expect(try SymbolValidation.normalize(raw) == normalized)
    }

    @Test(arguments: ["", "   ", "bad sym!", "1ABC", ".A", "ABCDEFGHIJK", "A/B", "ÄBC"])
    func invalidSymbols(raw: String) {
        #expect(throws: SymbolError.self) { try SymbolValidation.normalize(raw) }
        #expect(!SymbolValidation.isValid(raw))
    }

    @Test func symbolErrorMessages() {
        do {
            _ = try SymbolValidation.normalize("bad sym!")
        } catch {
            #expect(
                error.message == "invalid symbol \"bad sym!\": must match ^[A-Z][A-Z0-9.-]{0,9}$ after upper-casing")
        }
        do {
            _ = try SymbolValidation.normalize(" ")
        } catch {
            #expect(error.message == "symbol cannot be empty")
        }
    }

    @Test func selectorParsing() {
        #expect(StrategySelector(parsing: "regime") == .regime)
        #expect(StrategySelector(parsing: " REGIME ") == .regime)
        #expect(StrategySelector(parsing: "fixed:Breakout") == .fixed(.breakout))
        #expect(StrategySelector(parsing: "fixed:Momentum") == .fixed(.momentumRotation))
        #expect(StrategySelector(parsing: "fixed:") == nil)
        #expect(StrategySelector(parsing: "fixed:Astrology") == nil)
        #expect(StrategySelector(parsing: "llm") == nil)
        #expect(StrategySelector.fixed(.dualMomentum).description == "fixed:DualMomentum")
        #expect(
            StrategySelector(parsing: StrategySelector.fixed(.bollingerBands).description) == .fixed(.bollingerBands))
    }
}
