package store

// abandon simulates a crash of an in-process store: goroutines stop and files close, but no
// final flush, checkpoint or abort-marker removal happens.
func (s *Store) abandon() {
	if s.closed.Swap(true) {
		return
	}
	s.putMu.Lock()
	s.putMu.Unlock() //nolint:staticcheck // barrier
	close(s.stop)
	s.wg.Wait()
	if s.zero != nil {
		s.zero.close()
	}
	s.cl.stopPreparer()
	s.broadcastFlush(nil)
	s.broadcastDispatch()
	s.closeFiles()
}
