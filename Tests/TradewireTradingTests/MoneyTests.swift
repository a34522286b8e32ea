import Foundation
import Testing

@testable import TradewireTrading

@Suite struct MoneyTests {
    @Test func checkedOperationsThrowInsteadOfTrapping() throws {
        let big = Money(units: .max - 10)
        #expect(try big.adding(Money(units: 10)) == .max)
        #expect(throws: MoneyOverflow.self) { try big.adding(Money(units: 11)) }
        #expect(throws: MoneyOverflow.self) { try Money(units: .min).subtracting(Money(units: 1)) }
        #expect(throws: MoneyOverflow.self) { try Money(dollars: 1e9).multiplied(by: 1_000_000_000) }
        #expect(try Money(dollars: 2.5).multiplied(by: 4) == Money(dollars: 10))
        #expect(try Money(dollars: 1).subtracting(Money(dollars: 1.5)) == Money(dollars: -0.5))
        let (wrapped, overflow) = Money.max.multipliedReportingOverflow(by: 2)
        #expect(overflow && wrapped.units == -2)
        do {
            _ = try Money.max.adding(Money(units: 1))
            Issue.record("expected an overflow")
        } catch {
            #expect(error.description.hasPrefix("amount overflows the ledger: "))
        }
    }

    @Test func saturatingOperationsClampToTheRange() {
        #expect(Money.max.saturatingAdding(Money(dollars: 1)) == .max)
        #expect(Money(units: .min).saturatingAdding(Money(dollars: -1)) == Money(units: .min))
        #expect(Money(dollars: 1e9).saturatingMultiplied(by: 1_000_000_000) == .max)
        #expect(Money(dollars: 1e9).saturatingMultiplied(by: -1_000_000_000) == Money(units: .min))
        #expect(Money(dollars: 3).saturatingMultiplied(by: 2) == Money(dollars: 6))
    }

    @Test func validatingDollarsRefusesWhatDoesNotFit() throws {
        #expect(try Money(validatingDollars: 123.4567).units == 1_234_567)
        #expect(try Money(validatingDollars: Money.maxDollars) > Money(units: 9_200_000_000_000_000_000))
        #expect(Money.maxDollars == 922_337_203_685_477)
        for bad in [Double.nan, .infinity, -.infinity, 1e15, -1e15] {
            #expect(throws: MoneyOverflow.self) { try Money(validatingDollars: bad) }
        }
    }

    @Test func brokerRefusesOverflowingOrdersAndChangesNothing() async throws {
        let broker = PaperBroker(startingCash: 100_000, slippageBps: 5, commissionPerShare: 0.005, allowShorting: true)
        let before = await broker.account()
        // 1e7 shares × $1e9 = 1e16 dollars: beyond the ledger (the old code trapped here).
        await #expect(throws: BrokerError.overflow(symbol: "AAPL", quantity: 10_000_000, referencePrice: 1e9)) {
            try await broker.submit(symbol: "AAPL", side: .buy, quantity: 10_000_000, referencePrice: 1e9)
        }
        await #expect(throws: BrokerError.overflow(symbol: "AAPL", quantity: 10_000_000, referencePrice: 1e9)) {
            try await broker.submit(symbol: "AAPL", side: .sell, quantity: 10_000_000, referencePrice: 1e9)
        }
        await #expect(throws: BrokerError.self) {
            try await broker.submit(symbol: "AAPL", side: .buy, quantity: .max, referencePrice: 1)
        }
        await #expect(throws: BrokerError.self) {
            try await broker.submit(symbol: "AAPL", side: .buy, quantity: 1, referencePrice: 1e300)
        }
        await #expect(throws: BrokerError.overflow(symbol: "X", quantity: 10_000_000, referencePrice: 1e9)) {
            try await broker.quote(symbol: "X", side: .buy, quantity: 10_000_000, referencePrice: 1e9)
        }
        #expect(await broker.account() == before)
        let message = BrokerError.overflow(symbol: "AAPL", quantity: 10_000_000, referencePrice: 1e9).message
        #expect(message.hasPrefix("order value overflows the ledger: "))
        // A short sale whose proceeds would overflow the cash is refused too.
        let rich = PaperBroker(startingCash: 9e14, slippageBps: 0, commissionPerShare: 0, allowShorting: true)
        await #expect(throws: BrokerError.self) {
            try await rich.submit(symbol: "B", side: .sell, quantity: 100_000, referencePrice: 1e9)
        }
    }

    @Test func equitySaturatesInsteadOfTrapping() async throws {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        try await broker.submit(symbol: "A", side: .buy, quantity: 5_000, referencePrice: 1)
        await broker.mark(["A": 9e11])  // 5 000 × 9e11 = 4.5e15 dollars
        #expect(await broker.account().equity == .max)
        #expect(await broker.equity == Money.max.dollars)
        await broker.mark(["A": 1e300])  // does not fit: ignored
        #expect(await broker.lastPrice(of: "A") == 9e11)
    }

    @Test func fillsThatRoundToZeroAreRefused() async {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        await #expect(throws: BrokerError.invalidPrice(symbol: "PENNY")) {
            try await broker.submit(symbol: "PENNY", side: .buy, quantity: 1_000, referencePrice: 0.00001)
        }
    }
}
