import Testing
import TradewireJSON

@testable import TradewireTrading

@Suite struct LedgerTests {
    private func money(_ dollars: Double) -> Money { Money(dollars: dollars) }

    @Test func buysAverageAndSellsRealize() throws {
        var ledger = Ledger(cash: money(10_000))
        try ledger.book(symbol: "SPY", side: .buy, quantity: 10, fillPrice: money(100), commission: money(1))
        try ledger.book(symbol: "SPY", side: .buy, quantity: 10, fillPrice: money(110), commission: money(1))
        #expect(ledger.positions["SPY"] == Ledger.Position(quantity: 20, cost: money(2_100)))
        #expect(ledger.positions["SPY"]?.averagePrice == 105)
        #expect(ledger.cash == money(10_000 - 2_100 - 2))
        try ledger.book(symbol: "SPY", side: .sell, quantity: 5, fillPrice: money(120), commission: money(0.5))
        #expect(ledger.realizedPnL == money(75), "5 × (120 − 105)")
        #expect(ledger.positions["SPY"] == Ledger.Position(quantity: 15, cost: money(1_575)))
        try ledger.book(symbol: "SPY", side: .sell, quantity: 15, fillPrice: money(100), commission: money(0.5))
        #expect(ledger.realizedPnL == money(0), "75 − 15 × 5")
        #expect(ledger.positions["SPY"] == nil, "a flat position is removed")
        #expect(ledger.cash == money(10_000 - 2_100 - 2 + 600 - 0.5 + 1_500 - 0.5))
        #expect(ledger.commissionPaid == money(3) && ledger.orders == 4)
    }

    @Test func aSellThatCrossesZeroOpensAShortAtTheFillPrice() throws {
        var ledger = Ledger(cash: money(10_000))
        try ledger.book(symbol: "QQQ", side: .buy, quantity: 10, fillPrice: money(50), commission: .zero)
        try ledger.book(symbol: "QQQ", side: .sell, quantity: 15, fillPrice: money(60), commission: .zero)
        #expect(ledger.realizedPnL == money(100))
        #expect(ledger.positions["QQQ"] == Ledger.Position(quantity: -5, cost: money(-300)))
        try ledger.book(symbol: "QQQ", side: .buy, quantity: 5, fillPrice: money(40), commission: .zero)
        #expect(ledger.realizedPnL == money(200), "the short made 5 × (60 − 40)")
        #expect(ledger.positions.isEmpty)
    }

    @Test func unrealizedAndEquityUseTheMark() throws {
        var ledger = Ledger(cash: money(1_000))
        try ledger.book(
            symbol: "AAPL", side: .buy, quantity: 3, fillPrice: money(100), commission: .zero, mark: money(99))
        #expect(ledger.marks["AAPL"] == money(99))
        ledger.marks["AAPL"] = money(110)
        #expect(ledger.unrealizedPnL(of: "AAPL") == money(30))
        #expect(ledger.equity == money(700 + 330))
    }

    @Test func aFillThatOverflowsChangesNothing() {
        var ledger = Ledger(cash: money(1_000))
        let before = ledger
        #expect(throws: MoneyOverflow.self) {
            try ledger.book(symbol: "X", side: .buy, quantity: Int.max, fillPrice: money(1e6), commission: .zero)
        }
        #expect(throws: MoneyOverflow.self) {
            try ledger.book(symbol: "X", side: .buy, quantity: 0, fillPrice: money(1), commission: .zero)
        }
        #expect(ledger == before)
    }

    @Test func aShareOfTheBasisRoundsToTheLedgerUnit() {
        #expect(Ledger.share(of: Money(units: 10), 1, of: 3) == Money(units: 3))
        #expect(Ledger.share(of: Money(units: 20), 1, of: 3) == Money(units: 7))
        #expect(Ledger.share(of: Money(units: -20), 1, of: 3) == Money(units: -7))
        #expect(
            Ledger.share(of: Money(units: .max), 2, of: 3) == Money(units: 6_148_914_691_236_517_205), "no overflow")
    }

    @Test func theCheckpointRoundTripsExactly() throws {
        var ledger = Ledger(cash: money(5_000))
        try ledger.book(symbol: "A", side: .buy, quantity: 7, fillPrice: money(12.3456), commission: money(0.07))
        try ledger.book(symbol: "A", side: .sell, quantity: 2, fillPrice: money(13), commission: money(0.02))
        let text = JSONWriter.string(ledger.checkpointJSON)
        #expect(try Ledger(checkpoint: try JSONParser.parse(text)) == ledger)
    }

    @Test func theBrokerBooksThroughTheLedger() async throws {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0.01, allowShorting: false)
        try await broker.submit(symbol: "SPY", side: .buy, quantity: 10, referencePrice: 100)
        try await broker.submit(symbol: "SPY", side: .sell, quantity: 4, referencePrice: 110)
        let books = await broker.books()
        #expect(books.realizedPnL == money(40) && books.positions["SPY"]?.quantity == 6 && books.orders == 2)
        let fresh = PaperBroker(startingCash: 1, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        await fresh.restore(books)
        let fill = try await fresh.submit(symbol: "SPY", side: .sell, quantity: 1, referencePrice: 100)
        #expect(fill.orderID == "paper-000003", "order ids continue the restored count")
    }
}
