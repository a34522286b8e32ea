import Foundation
import Testing
import TradewireBus

@testable import TradewireJournal

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The data directory's rules and its exclusive lock.
@Suite struct DataDirectoryTests {
    /// Takes `DIR/lock` with flock, writes its pid there, says so, then sleeps.
    static let lockHolder = """
        import fcntl, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\\n" % os.getpid())
        print("locked %d" % os.getpid(), flush=True)
        time.sleep(600)
        """

    @Test func createsMissingDirectoriesWithMode0700() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let deep = temp.child("a/b/c")
        let journal = try openJournal(deep)
        defer { journal.close() }
        for path in [temp.child("a"), temp.child("a/b"), deep] {
            #expect(permissions(path) == 0o700, "\(path)")
        }
        #expect(permissions(deep + "/lock") == 0o600)
        #expect(FileManager.default.fileExists(atPath: deep + "/tradewire.db"))
        #expect(journal.directory == deep)
    }

    @Test func aRelativePathOrATrailingSlashNamesTheSameDirectory() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path + "/data/")
        #expect(journal.databasePath == temp.path + "/data/tradewire.db")
        journal.close()
        #expect(try DataDirectory.normalize("rel/dir//") == FileManager.default.currentDirectoryPath + "/rel/dir")
    }

    @Test func refusesASymlinkedDirectory() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        mkdir(temp.child("real"), 0o700)
        symlink(temp.child("real"), temp.child("link"))
        let error = journalError { try openJournal(temp.child("link")) }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains(temp.child("link")) == true)
        #expect(error?.message.contains("symbolic link") == true)
        #expect(journalError { try openJournal(temp.child("link") + "/") }?.kind == .unusable)
    }

    @Test func refusesADirectoryWritableByOthersWithoutChangingIt() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let open = temp.child("open")
        mkdir(open, 0o700)
        chmod(open, 0o777)
        let error = journalError { try openJournal(open) }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains("\(open) is writable by group or others (mode 0777)") == true)
        #expect(permissions(open) == 0o777)
        chmod(open, 0o720)
        #expect(journalError { try openJournal(open) }?.kind == .unusable)
        chmod(open, 0o750)
        try openJournal(open).close()
    }

    @Test func refusesAPathThatIsAFile() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let file = temp.child("file")
        #expect(FileManager.default.createFile(atPath: file, contents: Array("x".utf8).withUnsafeBytes { Data($0) }))
        let error = journalError { try openJournal(file) }
        #expect(error?.kind == .unusable)
        #expect(error?.message == "data dir \(file) exists and is not a directory")
        let below = journalError { try openJournal(file + "/sub") }
        #expect(below?.kind == .unusable)
    }

    @Test func refusesADirectoryOwnedByAnotherUser() throws {
        // Only root can give a directory away.
        guard geteuid() == 0 else { return }
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let foreign = temp.child("foreign")
        mkdir(foreign, 0o700)
        #expect(chown(foreign, 65_534, 65_534) == 0)
        let error = journalError { try openJournal(foreign) }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains("owned by uid 65534") == true)
    }

    @Test func aSecondOpenInTheSameProcessIsInUse() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        let error = journalError { try openJournal(temp.path) }
        #expect(error?.kind == .inUse)
        #expect(
            error?.message
                == "data dir \(temp.path) is in use by another tradewired (pid \(getpid())); "
                + "give each daemon its own --data-dir, or run with --ephemeral")
        journal.close()
        try openJournal(temp.path).close()
    }

    @Test func aLockHeldByAnotherProcessIsInUseUntilThatProcessIsKilled() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        try openJournal(temp.path).close()
        let holder = try PythonChild(script: Self.lockHolder, arguments: [temp.child("lock")])
        let line = try #require(holder.readLine())
        let pid = try #require(Int32(line.dropFirst("locked ".count)))
        let error = journalError { try openJournal(temp.path) }
        #expect(error?.kind == .inUse)
        #expect(error?.message.contains("in use by another tradewired (pid \(pid))") == true)
        holder.sigkill(pid: pid)
        let journal = try openJournal(temp.path)
        #expect(try journal.newestSeq() == 0)
        journal.close()
    }

    @Test func aSymlinkedLockFileIsRefused() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let data = temp.child("data")
        mkdir(data, 0o700)
        symlink(temp.child("elsewhere"), data + "/lock")
        #expect(journalError { try openJournal(data) }?.kind == .unusable)
        #expect(!FileManager.default.fileExists(atPath: temp.child("elsewhere")))
    }
}
