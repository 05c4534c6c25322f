//go:build !linux

package main

import (
	"context"
	"errors"
	"net"
	"runtime"
)

type netnsLoss struct{ brokerIP, client string }

func lossNetnsUnavailable() string {
	return "network namespaces are Linux only (this is " + runtime.GOOS + ")"
}

func newNetnsLoss(float64) (*netnsLoss, error) { return nil, errors.New(lossNetnsUnavailable()) }

func (n *netnsLoss) in(int, func() error) error { return errors.New(lossNetnsUnavailable()) }

func (n *netnsLoss) dial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New(lossNetnsUnavailable())
}

func (n *netnsLoss) dropped() (uint64, error) { return 0, errors.New(lossNetnsUnavailable()) }

func (n *netnsLoss) close() {}

func (n *netnsLoss) tcpRetransmits() (uint64, error) { return 0, errors.New(lossNetnsUnavailable()) }
